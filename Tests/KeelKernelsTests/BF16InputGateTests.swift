/// A squeeze-excitation gate on a bf16 1×1 layer's input channels (EfficientNet's projection after
/// its sigmoid gate), applied to each image's copy of the packed filter: the result must be the
/// convolution of each image with its filter row c scaled by gate c, in the rounding the kernel
/// documents (the bf16 filter value times the gate in fp32, rounded to bf16 again), computed here
/// in double precision. Odd depths (the last pair half padding), columns not a multiple of 16, a
/// residual, a bf16 output, batch 3, one and two threads.
@testable import KeelKernels
import XCTest

final class BF16InputGateTests: XCTestCase {
    typealias Case = BF16ConvolutionTests.Case

    static let cases: [Case] = [
        Case(geometry: Conv2DGeometry(batch: 3, input: Size2D(5, 7), inputChannels: 37, outputChannels: 20,
                                      kernel: Size2D(1, 1)),
             activation: .identity, bias: true),
        Case(geometry: Conv2DGeometry(batch: 3, input: Size2D(6, 6), inputChannels: 96, outputChannels: 40,
                                      kernel: Size2D(1, 1)),
             activation: .identity, bias: true, residual: true),
        Case(geometry: Conv2DGeometry(batch: 2, input: Size2D(9, 4), inputChannels: 144, outputChannels: 24,
                                      kernel: Size2D(1, 1)),
             activation: .relu, bias: false),
    ]

    private func requireGate() throws {
        guard CPUCapabilities.detected.contains(.avx512BF16) else {
            throw XCTSkip("this CPU has no AVX512_BF16, which rescales the bf16 filter for a gate")
        }
    }

    /// The layer through `BF16Convolution.apply(inputScales:)`, fp32 or bf16 output (as floats).
    private func gated(_ testCase: Case, weights: BF16Weights, input: [Float], bias: [Float], residual: [Float],
                       gates: [Float], output storage: ActivationStorage, threads: Int) throws -> [Float] {
        let g = testCase.geometry
        var scratch = [Float](repeating: .nan, count: BF16Convolution.scratchSize(for: g, threads: threads)
                                  + BF16Convolution.inputScaleScratchSize(for: g))
        let stored = try withOutput(BF16Convolution.slots(g.outputElementCount, in: storage)) { output in
            try input.withUnsafeBufferPointer { source in
                try scratch.withUnsafeMutableBufferPointer { work in
                    try bias.withUnsafeBufferPointer { biasValues in
                        try residual.withUnsafeBufferPointer { shortcut in
                            try gates.withUnsafeBufferPointer { scales in
                                try BF16Convolution.apply(input: source, weights: weights,
                                                          bias: testCase.bias ? biasValues : nil,
                                                          residual: testCase.residual ? shortcut : nil,
                                                          activation: testCase.activation, output: output, geometry: g,
                                                          scratch: work, outputStorage: storage, inputScales: scales,
                                                          context: KernelContext(threads: threads))
                            }
                        }
                    }
                }
            }
        }
        guard storage == .bf16 else { return stored }
        return stored.withUnsafeBytes { bytes in
            (0..<g.outputElementCount).map { Float(bitPattern: UInt32(bytes.load(fromByteOffset: 2 * $0, as: UInt16.self)) << 16) }
        }
    }

    func testAGateScalesEachImagesFilter() throws {
        try requireGate()
        for (index, testCase) in Self.cases.enumerated() {
            let g = testCase.geometry
            XCTAssertTrue(BF16Convolution.gatesInput(g), "case \(index)")
            let (depth, columns) = (g.inputChannels, g.outputChannels)
            let input = seededValues(g.inputElementCount, seed: UInt64(61 + index))
            let filter = seededValues(depth * columns, seed: UInt64(19 + index))
            let bias = seededValues(columns, seed: UInt64(2 + index))
            let residual = seededValues(g.outputElementCount, seed: UInt64(43 + index))
            // Sigmoid-like gates in (0, 1).
            let gates = seededValues(g.batch * depth, seed: UInt64(77 + index)).map { 0.5 + 0.45 * $0 }
            let weights = try filter.withUnsafeBufferPointer {
                try BF16Weights($0, depth: depth, columns: columns, depthStride: columns, columnStride: 1)
            }
            var expected = [Double](), magnitude = [Double]()
            var single = testCase
            single.geometry.batch = 1
            let (inputStep, outputStep) = (single.geometry.inputElementCount, single.geometry.outputElementCount)
            for image in 0..<g.batch {
                let scaled = filter.indices.map { roundedToBF16(roundedToBF16(filter[$0]) * gates[image * depth + $0 / columns]) }
                let (values, magnitudes) = BF16ConvolutionTests.reference(
                    single, input: input[image * inputStep..<(image + 1) * inputStep].map(roundedToBF16), filter: scaled,
                    bias: testCase.bias ? bias : nil,
                    residual: testCase.residual ? Array(residual[image * outputStep..<(image + 1) * outputStep]) : nil)
                expected += values
                magnitude += magnitudes
            }
            for threads in [1, 2] {
                let fp32 = try gated(testCase, weights: weights, input: input, bias: bias, residual: residual, gates: gates,
                                     output: .fp32, threads: threads)
                for position in expected.indices {
                    XCTAssertEqual(Double(fp32[position]), expected[position],
                                   accuracy: Double(depth) * 1.2e-7 * magnitude[position] + 1e-7,
                                   "case \(index) threads \(threads) at \(position)")
                }
                let bf16 = try gated(testCase, weights: weights, input: input, bias: bias, residual: residual, gates: gates,
                                     output: .bf16, threads: threads)
                XCTAssertEqual(bf16, fp32.map(roundedToBF16), "case \(index) threads \(threads): bf16 output")
            }
        }
    }

    func testAGateOnALayerOtherThanOneByOneIsRefused() throws {
        try requireGate()
        let g = Conv2DGeometry(batch: 1, input: Size2D(4, 4), inputChannels: 32, outputChannels: 16, kernel: Size2D(3, 3),
                               padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1))
        XCTAssertFalse(BF16Convolution.gatesInput(g))
        let weights = try [Float](repeating: 0.25, count: g.reductionLength * g.outputChannels).withUnsafeBufferPointer {
            try BF16Weights($0, depth: g.reductionLength, columns: g.outputChannels, depthStride: g.outputChannels,
                            columnStride: 1)
        }
        var scratch = [Float](repeating: 0, count: BF16Convolution.scratchSize(for: g, threads: 1) + 4096)
        let input = [Float](repeating: 1, count: g.inputElementCount), gates = [Float](repeating: 1, count: 32)
        XCTAssertThrowsError(try withOutput(g.outputElementCount) { output in
            try input.withUnsafeBufferPointer { source in
                try scratch.withUnsafeMutableBufferPointer { work in
                    try gates.withUnsafeBufferPointer { scales in
                        try BF16Convolution.apply(input: source, weights: weights, bias: nil, activation: .identity,
                                                  output: output, geometry: g, scratch: work, inputScales: scales,
                                                  context: .singleThreaded)
                    }
                }
            }
        })
    }
}
