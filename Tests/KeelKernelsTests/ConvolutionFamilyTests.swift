/// Every convolution algorithm (im2col GEMM, pointwise, direct, Winograd, depthwise, grouped
/// through im2col, and bf16 where a bf16 kernel is present) at every capability set this CPU
/// has, against `NaiveConvolution` on awkward sizes. A new kernel adds its algorithm to
/// `algorithms(for:)`; a new shape adds a line to `cases`.
import KeelKernels
import XCTest

final class ConvolutionFamilyTests: XCTestCase {
    struct Case {
        var name: String
        var geometry: Conv2DGeometry
        var activation: UnaryOperation = .identity
        var bias = true
        var residual = false
    }

    static let cases: [Case] = {
        let same = Padding2D(top: 1, left: 1, bottom: 1, right: 1)
        var cases: [Case] = []
        for layout in [ActivationLayout.nhwc, .nchw] {
            cases += [
                Case(name: "odd channels 3x3", geometry: Conv2DGeometry(
                    batch: 2, input: Size2D(9, 11), inputChannels: 17, outputChannels: 19, kernel: Size2D(3, 3),
                    padding: same, layout: layout), activation: .relu),
                Case(name: "1x1 spatial", geometry: Conv2DGeometry(
                    batch: 3, input: Size2D(1, 1), inputChannels: 5, outputChannels: 7, kernel: Size2D(1, 1), layout: layout),
                     residual: true),
                Case(name: "1x1 spatial 3x3 same", geometry: Conv2DGeometry(
                    batch: 1, input: Size2D(1, 1), inputChannels: 16, outputChannels: 16, kernel: Size2D(3, 3),
                    padding: same, layout: layout)),
                Case(name: "stride 2 odd input", geometry: Conv2DGeometry(
                    batch: 2, input: Size2D(13, 15), inputChannels: 6, outputChannels: 9, kernel: Size2D(3, 3),
                    stride: Size2D(2, 2), padding: Padding2D(top: 0, left: 0, bottom: 1, right: 1), layout: layout),
                     activation: .sigmoid),
                Case(name: "winograd-sized odd", geometry: Conv2DGeometry(
                    batch: 2, input: Size2D(15, 13), inputChannels: 16, outputChannels: 33, kernel: Size2D(3, 3),
                    padding: same, layout: layout), activation: .relu, residual: true),
                Case(name: "pointwise odd", geometry: Conv2DGeometry(
                    batch: 2, input: Size2D(5, 7), inputChannels: 13, outputChannels: 21, kernel: Size2D(1, 1), layout: layout)),
                Case(name: "depthwise", geometry: Conv2DGeometry(
                    batch: 2, input: Size2D(9, 7), inputChannels: 19, outputChannels: 19, kernel: Size2D(3, 3),
                    padding: same, groups: 19, layout: layout), activation: .clip(min: 0, max: 6)),
                Case(name: "depthwise stride 2 odd", geometry: Conv2DGeometry(
                    batch: 1, input: Size2D(11, 9), inputChannels: 8, outputChannels: 8, kernel: Size2D(3, 3),
                    stride: Size2D(2, 2), padding: same, groups: 8, layout: layout)),
                Case(name: "grouped", geometry: Conv2DGeometry(
                    batch: 2, input: Size2D(7, 6), inputChannels: 12, outputChannels: 9, kernel: Size2D(3, 3),
                    padding: same, groups: 3, layout: layout), activation: .relu),
            ]
        }
        return cases
    }()

    /// The fp32 algorithms that compute `geometry`.
    static func algorithms(for geometry: Conv2DGeometry) -> [Conv2DAlgorithm] {
        var algorithms: [Conv2DAlgorithm] = [.im2colGEMM]
        if geometry.isPointwise { algorithms.append(.pointwise) }
        if geometry.groups == 1 { algorithms.append(.direct) }
        if WinogradWeights.canRun(geometry) { algorithms.append(.winograd) }
        if geometry.groups == geometry.inputChannels && geometry.groups == geometry.outputChannels && geometry.groups > 1 {
            algorithms.append(.depthwise)
        }
        return algorithms
    }

    /// Seeded input, HWIO filter, bias and residual for `testCase`.
    struct Data {
        var input: [Float]
        var hwio: [Float]
        var bias: [Float]?
        var residual: [Float]?
        var packed: PackedConv2DWeights

        init(_ testCase: Case, seed: UInt64) throws {
            let g = testCase.geometry
            input = seededValues(g.inputElementCount, seed: seed)
            hwio = seededValues(g.kernel.height * g.kernel.width * g.inputChannelsPerGroup * g.outputChannels, seed: seed + 1)
            bias = testCase.bias ? seededValues(g.outputChannels, seed: seed + 2) : nil
            residual = testCase.residual ? seededValues(g.outputElementCount, seed: seed + 3) : nil
            packed = try hwio.withUnsafeBufferPointer {
                try PackedConv2DWeights(hwio: $0, kernel: g.kernel, inputChannelsPerGroup: g.inputChannelsPerGroup,
                                        outputChannels: g.outputChannels, groups: g.groups)
            }
        }

        func reference(_ testCase: Case) -> [Float] {
            NaiveConvolution(geometry: testCase.geometry, hwio: hwio, bias: bias, residual: residual,
                             activation: testCase.activation).run(input)
        }
    }

    /// Runs `body` with the input, bias and residual as buffers and a zeroed output.
    func convolve(_ data: Data, _ geometry: Conv2DGeometry, scratchCount: Int,
                  _ body: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>?, UnsafeBufferPointer<Float>?,
                           UnsafeMutableBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) throws -> Void) throws -> [Float] {
        var scratch = [Float](repeating: .nan, count: max(scratchCount, 1))
        func optional(_ values: [Float]?, _ use: (UnsafeBufferPointer<Float>?) throws -> Void) rethrows {
            guard let values else { return try use(nil) }
            try values.withUnsafeBufferPointer { try use($0) }
        }
        return try withOutput(geometry.outputElementCount) { output in
            try data.input.withUnsafeBufferPointer { input in
                try optional(data.bias) { bias in
                    try optional(data.residual) { residual in
                        try scratch.withUnsafeMutableBufferPointer { try body(input, bias, residual, output, $0) }
                    }
                }
            }
        }
    }

    func testEveryAlgorithmMatchesTheNaiveConvolution() throws {
        let data = try Self.cases.enumerated().map { try Data($0.element, seed: UInt64(100 * $0.offset)) }
        let references = zip(Self.cases, data).map { $1.reference($0) }
        try forEachCapabilitySet(testing: "convolution") { capabilities in
            for (index, testCase) in Self.cases.enumerated() {
                let geometry = testCase.geometry
                for algorithm in Self.algorithms(for: geometry) {
                    for threads in [1, 2] {
                        let scratchCount = Conv2D.scratchSize(for: geometry, algorithm: algorithm, threads: threads)
                        let actual = try convolve(data[index], geometry, scratchCount: scratchCount) {
                            input, bias, residual, output, scratch in
                            try Conv2D.apply(input: input, weights: data[index].packed, bias: bias, residual: residual,
                                             activation: testCase.activation, output: output, geometry: geometry,
                                             scratch: scratch, algorithm: algorithm, context: KernelContext(threads: threads))
                        }
                        assertClose(actual, references[index],
                                    "\(testCase.name) \(geometry.layout) \(algorithm) [\(capabilities)] threads \(threads)")
                    }
                }
            }
        }
    }

    /// bf16 rounds inputs and weights to 8 significant bits: within 2⁻⁸ of the reduction's
    /// magnitude (the sum of |input·weight|), accumulated in fp32.
    func testBF16MatchesTheNaiveConvolutionWithinRounding() throws {
        var checked = 0
        try forEachCapabilitySet(testing: "convolution (bf16)") { capabilities in
            guard BF16Convolution.isAvailable else { return }
            for (index, testCase) in Self.cases.enumerated() where BF16Convolution.supports(testCase.geometry) && !testCase.residual {
                let geometry = testCase.geometry
                let data = try Data(testCase, seed: UInt64(7 + index))
                let weights = try BF16Weights(data.packed)
                let actual = try convolve(data, geometry, scratchCount: BF16Convolution.scratchSize(for: geometry, threads: 2)) {
                    input, bias, _, output, scratch in
                    try BF16Convolution.apply(input: input, weights: weights, bias: bias, activation: testCase.activation,
                                              output: output, geometry: geometry, scratch: scratch,
                                              context: KernelContext(threads: 2))
                }
                let reference = data.reference(testCase)
                let reduction = Float(geometry.kernel.height * geometry.kernel.width * geometry.inputChannelsPerGroup)
                let worst = zip(actual, reference).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, reduction / 256, "\(testCase.name) [\(capabilities)]")
                XCTAssertEqual(actual.count, reference.count)
                checked += 1
            }
        }
        if !CPUCapabilities.detected.contains(.avx512BF16) {
            print("convolution (bf16): skipped: this CPU has neither AVX512_BF16 nor AMX-BF16")
        } else {
            XCTAssertGreaterThan(checked, 0, "no case ran on the bf16 kernels")
        }
    }
}
