/// The bf16 kernels reading a bf16 input or residual and storing a bf16 output (a plan's
/// activations between bf16 layers), at every bf16 capability this CPU has: a bf16 input holds the
/// values the kernel would have rounded an fp32 input to, so the fp32 result must be the same bits;
/// a bf16 residual must add exactly what an fp32 residual rounded here adds; a bf16 output must be
/// the fp32 result rounded to nearest even (rounded here, independently of the kernel).
/// The fp32 results themselves are checked against a double-precision reference in
/// BF16ConvolutionTests; the cases are its awkward sizes (depth not a multiple of 32, columns not
/// a multiple of 16, 1×1 images, stride and dilation, both forms, the fused pool).
@testable import KeelKernels
import XCTest

final class BF16ActivationStorageTests: XCTestCase {
    /// bf16 bit patterns of `values` (rounded to nearest even), two per float slot.
    private func packed(_ values: [Float]) -> [Float] {
        var slots = [Float](repeating: 0, count: (values.count + 1) / 2)
        slots.withUnsafeMutableBytes { bytes in
            for (index, value) in values.enumerated() {
                bytes.storeBytes(of: UInt16(roundedToBF16(value).bitPattern >> 16), toByteOffset: 2 * index, as: UInt16.self)
            }
        }
        return slots
    }

    /// The first `count` bf16 values of `slots` as floats.
    private func unpacked(_ slots: [Float], count: Int) -> [Float] {
        slots.withUnsafeBytes { bytes in
            (0..<count).map { Float(bitPattern: UInt32(bytes.load(fromByteOffset: 2 * $0, as: UInt16.self)) << 16) }
        }
    }

    /// `residual` `.bf16`: the shortcut is passed as bf16 values; `roundedResidual`: as fp32 values
    /// already rounded to bf16 here (what a bf16 one must add).
    private func run(_ testCase: BF16ConvolutionTests.Case, index: Int, pooled: Bool, threads: Int,
                     input inputStorage: ActivationStorage, output outputStorage: ActivationStorage,
                     residual residualStorage: ActivationStorage = .fp32, roundedResidual: Bool = false) throws -> [Float] {
        let geometry = testCase.geometry, depth = geometry.reductionLength, columns = geometry.outputChannels
        // A split layer's fp32 input is given already rounded: its low terms are then zero, as a
        // bf16 input's are, so both must give the same bits.
        let split = BF16Convolution.splitsInput(inputChannels: geometry.inputChannels)
        let seeded = seededValues(geometry.inputElementCount, seed: UInt64(41 + index))
        let values = split ? seeded.map(roundedToBF16) : seeded
        let input = inputStorage == .bf16 ? packed(values) : values
        let filter = seededValues(depth * columns, seed: UInt64(23 + index))
        let bias = seededValues(columns, seed: UInt64(7 + index))
        let shortcut = seededValues(testCase.residual ? geometry.outputElementCount : 0, seed: UInt64(13 + index))
        let residual = residualStorage == .bf16 ? packed(shortcut) : roundedResidual ? shortcut.map(roundedToBF16) : shortcut
        let weights = try filter.withUnsafeBufferPointer {
            try BF16Weights($0, depth: depth, columns: columns, depthStride: columns, columnStride: 1, splitInput: split)
        }
        let out = geometry.output
        let count = pooled ? geometry.batch * (out.height / 2) * (out.width / 2) * columns : geometry.outputElementCount
        var scratch = [Float](repeating: .nan, count: BF16Convolution.scratchSize(for: geometry, threads: threads))
        let stored = try withOutput(BF16Convolution.slots(count, in: outputStorage)) { output in
            try input.withUnsafeBufferPointer { source in
                try scratch.withUnsafeMutableBufferPointer { work in
                    try bias.withUnsafeBufferPointer { biasValues in
                        try residual.withUnsafeBufferPointer { shortcut in
                            try BF16Convolution.apply(input: source, weights: weights, bias: testCase.bias ? biasValues : nil,
                                                      residual: testCase.residual ? shortcut : nil,
                                                      activation: testCase.activation, output: output, geometry: geometry,
                                                      scratch: work, maxPooled: pooled, inputStorage: inputStorage,
                                                      outputStorage: outputStorage, residualStorage: residualStorage,
                                                      context: KernelContext(threads: threads))
                        }
                    }
                }
            }
        }
        return outputStorage == .bf16 ? unpacked(stored, count: count) : stored
    }

    func check(_ capabilities: CPUCapabilities, label: String) throws {
        CPUCapabilities.restrict(to: capabilities)
        defer { CPUCapabilities.restoreDetected() }
        let cases = BF16ConvolutionTests.cases.map { ($0, false) }
            + (capabilities.contains(.amxBF16) ? BF16ConvolutionTests.pooledCases.map { ($0, true) } : [])
        for (index, (testCase, pooled)) in cases.enumerated()
        where BF16Convolution.storesBF16(after: testCase.activation) {
            for threads in [1, 2] {
                let name = "\(label) case \(index)\(pooled ? " pooled" : "") threads \(threads)"
                let fp32 = try run(testCase, index: index, pooled: pooled, threads: threads, input: .fp32, output: .fp32)
                XCTAssertFalse(fp32.contains { $0 != 0 && abs($0) < Float.leastNormalMagnitude }, name)
                let bf16Input = try run(testCase, index: index, pooled: pooled, threads: threads, input: .bf16, output: .fp32)
                XCTAssertEqual(bf16Input, fp32, "\(name): a bf16 input is what the kernel rounds an fp32 one to")
                let rounded = fp32.map(roundedToBF16)
                for storage in [ActivationStorage.fp32, .bf16] {
                    let bf16Output = try run(testCase, index: index, pooled: pooled, threads: threads, input: storage,
                                             output: .bf16)
                    XCTAssertEqual(bf16Output, rounded, "\(name): \(storage) input, bf16 output")
                }
                guard testCase.residual else { continue }
                let expected = try run(testCase, index: index, pooled: pooled, threads: threads, input: .fp32,
                                       output: .fp32, roundedResidual: true)
                for output in [ActivationStorage.fp32, .bf16] {
                    let bf16Residual = try run(testCase, index: index, pooled: pooled, threads: threads, input: .bf16,
                                               output: output, residual: .bf16)
                    XCTAssertEqual(bf16Residual, output == .bf16 ? expected.map(roundedToBF16) : expected,
                                   "\(name): a bf16 residual adds the values it holds, widened exactly (\(output) output)")
                }
            }
        }
    }

    func testAMXReadsAndStoresBF16Activations() throws {
        guard CPUCapabilities.detected.contains(.amxBF16) else {
            throw XCTSkip("this CPU (or Linux, which grants the tile state) offers no AMX-BF16")
        }
        try check(CPUCapabilities.detected, label: "AMX")
    }

    func testAVX512BF16ReadsAndStoresBF16Activations() throws {
        guard CPUCapabilities.detected.contains(.avx512BF16) else { throw XCTSkip("this CPU has no AVX512_BF16") }
        try check(CPUCapabilities.detected.subtracting(.amxBF16), label: "AVX512_BF16")
    }

    func testABF16OutputAfterAnUnfusedActivationIsRefused() throws {
        guard BF16Convolution.isAvailable else { throw XCTSkip("this CPU has neither AMX-BF16 nor AVX512_BF16") }
        let geometry = BF16ConvolutionTests.cases[0].geometry
        let weights = try [Float](repeating: 1, count: geometry.reductionLength * geometry.outputChannels)
            .withUnsafeBufferPointer {
                try BF16Weights($0, depth: geometry.reductionLength, columns: geometry.outputChannels,
                                depthStride: geometry.outputChannels, columnStride: 1)
            }
        var scratch = [Float](repeating: 0, count: BF16Convolution.scratchSize(for: geometry, threads: 1))
        let input = [Float](repeating: 1, count: geometry.inputElementCount)
        XCTAssertThrowsError(try withOutput(geometry.outputElementCount) { output in
            try input.withUnsafeBufferPointer { source in
                try scratch.withUnsafeMutableBufferPointer { work in
                    try BF16Convolution.apply(input: source, weights: weights, bias: nil, activation: .softplus,
                                              output: output, geometry: geometry, scratch: work, outputStorage: .bf16,
                                              context: .singleThreaded)
                }
            }
        })
    }
}
