/// The depthwise kernel reading a bf16 input or storing a bf16 output (a bf16 plan's activations
/// around MobileNet's and EfficientNet's depthwise layers), on AVX512_BF16: its fp32 output must be
/// within fp32 rounding of a double-precision depthwise convolution of the bf16 values, a bf16
/// input must give the bits of the same values given as fp32, and a bf16 output must be the fp32
/// output rounded to nearest even (rounded here, independently of the kernel). Awkward sizes:
/// channels that are not multiples of 16, odd maps, stride 2 onto an odd input, asymmetric padding,
/// a 1×1 map, batch 2, every activation kind the plans use, a residual.
@testable import KeelKernels
import XCTest

final class DepthwiseBF16StorageTests: XCTestCase {
    static func depthwise(batch: Int, input: Size2D, channels: Int, kernel: Int, stride: Int,
                          padding: Padding2D) -> Conv2DGeometry {
        Conv2DGeometry(batch: batch, input: input, inputChannels: channels, outputChannels: channels,
                       kernel: Size2D(kernel, kernel), stride: Size2D(stride, stride), padding: padding, groups: channels)
    }

    static let same1 = Padding2D(top: 1, left: 1, bottom: 1, right: 1)
    static let same2 = Padding2D(top: 2, left: 2, bottom: 2, right: 2)

    typealias Case = BF16ConvolutionTests.Case

    static let cases: [Case] = [
        // MobileNetV2's 3×3 stride 1 with ReLU6, 24 channels (a 16-lane vector and a masked 8).
        Case(geometry: depthwise(batch: 2, input: Size2D(7, 9), channels: 24, kernel: 3, stride: 1, padding: same1),
             activation: .clip(min: 0, max: 6), bias: true),
        // Stride 2 onto an odd input with TensorFlow's asymmetric padding (bottom and right only).
        Case(geometry: depthwise(batch: 1, input: Size2D(11, 13), channels: 40, kernel: 3, stride: 2,
                                 padding: Padding2D(top: 0, left: 0, bottom: 1, right: 1)),
             activation: .relu, bias: true),
        // EfficientNet's 5×5 with swish, 20 channels; and at stride 2 with a residual, no activation.
        Case(geometry: depthwise(batch: 2, input: Size2D(9, 10), channels: 20, kernel: 5, stride: 1, padding: same2),
             activation: .swish, bias: true),
        Case(geometry: depthwise(batch: 1, input: Size2D(9, 9), channels: 72, kernel: 5, stride: 2, padding: same2),
             activation: .identity, bias: true, residual: true),
        // A 1×1 map (only the centre tap reads it), 17 channels, hard-swish.
        Case(geometry: depthwise(batch: 2, input: Size2D(1, 1), channels: 17, kernel: 3, stride: 1, padding: same1),
             activation: .hardSwish, bias: true),
        // Rows wider than one 8-pixel run, many channels (Xception's 3×3 layers), no activation.
        Case(geometry: depthwise(batch: 1, input: Size2D(5, 19), channels: 144, kernel: 3, stride: 1, padding: same1),
             activation: .identity, bias: true),
    ]

    /// bf16 bit patterns of `values` (already bf16 values), two per float slot.
    private func packed(_ values: [Float]) -> [Float] {
        var slots = [Float](repeating: 0, count: (values.count + 1) / 2)
        slots.withUnsafeMutableBytes { bytes in
            for (index, value) in values.enumerated() {
                bytes.storeBytes(of: UInt16(value.bitPattern >> 16), toByteOffset: 2 * index, as: UInt16.self)
            }
        }
        return slots
    }

    private func unpacked(_ slots: [Float], count: Int) -> [Float] {
        slots.withUnsafeBytes { bytes in
            (0..<count).map { Float(bitPattern: UInt32(bytes.load(fromByteOffset: 2 * $0, as: UInt16.self)) << 16) }
        }
    }

    private func run(_ testCase: Case, weights: PackedConv2DWeights, input: [Float], bias: [Float], residual: [Float],
                     inputStorage: ActivationStorage, outputStorage: ActivationStorage, threads: Int) throws -> [Float] {
        let g = testCase.geometry
        let source = inputStorage == .bf16 ? packed(input) : input
        let stored = try withOutput(BF16Convolution.slots(g.outputElementCount, in: outputStorage)) { output in
            try source.withUnsafeBufferPointer { source in
                try bias.withUnsafeBufferPointer { bias in
                    try residual.withUnsafeBufferPointer { shortcut in
                        try DepthwiseConvolution.apply(input: source, weights: weights, bias: bias,
                                                       residual: testCase.residual ? shortcut : nil,
                                                       activation: testCase.activation, output: output, geometry: g,
                                                       inputStorage: inputStorage, outputStorage: outputStorage,
                                                       context: KernelContext(threads: threads))
                    }
                }
            }
        }
        return outputStorage == .bf16 ? unpacked(stored, count: g.outputElementCount) : stored
    }

    private static func weights(_ filter: [Float], _ g: Conv2DGeometry) throws -> PackedConv2DWeights {
        try filter.withUnsafeBufferPointer {
            try PackedConv2DWeights(hwio: $0, kernel: g.kernel, inputChannelsPerGroup: 1, outputChannels: g.outputChannels,
                                    groups: g.groups)
        }
    }

    private func requireBF16Body() throws {
        guard CPUCapabilities.detected.contains(.avx512BF16) else {
            throw XCTSkip("this CPU has no AVX512_BF16, whose depthwise body reads and writes bf16")
        }
    }

    func testBF16ActivationsAroundTheDepthwiseKernel() throws {
        try requireBF16Body()
        for (index, testCase) in Self.cases.enumerated() {
            let g = testCase.geometry
            try g.validate()
            XCTAssertTrue(DepthwiseConvolution.runsBF16(g), "case \(index)")
            // Inputs already bf16 values, as a bf16 producer leaves them.
            let input = seededValues(g.inputElementCount, seed: UInt64(31 + index)).map(roundedToBF16)
            let filter = seededValues(g.kernel.height * g.kernel.width * g.outputChannels, seed: UInt64(57 + index))
            let bias = seededValues(g.outputChannels, seed: UInt64(3 + index))
            let residual = seededValues(testCase.residual ? g.outputElementCount : 0, seed: UInt64(89 + index))
            let weights = try Self.weights(filter, g)
            let (expected, magnitude) = BF16ConvolutionTests.reference(testCase, input: input, filter: filter, bias: bias,
                                                                       residual: testCase.residual ? residual : nil)
            for threads in [1, 2] {
                let name = "case \(index) threads \(threads)"
                let fp32 = try run(testCase, weights: weights, input: input, bias: bias, residual: residual,
                                   inputStorage: .bf16, outputStorage: .fp32, threads: threads)
                for position in expected.indices {
                    let bound = 2.4e-7 * Double(g.kernel.height * g.kernel.width + 2) * magnitude[position]
                        + 5e-7 * abs(expected[position]) + 1e-6
                    XCTAssertEqual(Double(fp32[position]), expected[position], accuracy: bound, "\(name) at \(position)")
                }
                let fromFP32 = try run(testCase, weights: weights, input: input, bias: bias, residual: residual,
                                       inputStorage: .fp32, outputStorage: .bf16, threads: threads)
                let rounded = fp32.map(roundedToBF16)
                XCTAssertEqual(fromFP32, rounded, "\(name): fp32 input, bf16 output is the fp32 result rounded")
                let both = try run(testCase, weights: weights, input: input, bias: bias, residual: residual,
                                   inputStorage: .bf16, outputStorage: .bf16, threads: threads)
                XCTAssertEqual(both, rounded, "\(name): bf16 input and output")
            }
        }
    }

    func testGeometriesWithoutABF16BodyAndUnfusedActivationsAreRefused() throws {
        try requireBF16Body()
        let g7 = Self.depthwise(batch: 1, input: Size2D(8, 8), channels: 16, kernel: 7, stride: 1,
                                padding: Padding2D(top: 3, left: 3, bottom: 3, right: 3))
        XCTAssertFalse(DepthwiseConvolution.runsBF16(g7), "7×7 runs on the sliding body, fp32 only")
        let g3 = Self.cases[0].geometry
        XCTAssertTrue(DepthwiseConvolution.storesBF16(after: .swish))
        XCTAssertFalse(DepthwiseConvolution.storesBF16(after: .softplus))
        let full = { (g: Conv2DGeometry) in BF16Convolution.slots(g.outputElementCount, in: .bf16) }
        // No bf16 body for 7×7; an activation the kernel does not fuse; an output one slot short.
        for (g, activation, outputSlots) in [(g7, UnaryOperation.relu, full(g7)), (g3, .softplus, full(g3)),
                                             (g3, .relu, full(g3) - 1)] {
            let weights = try Self.weights([Float](repeating: 0.5, count: g.kernel.height * g.kernel.width
                                                    * g.outputChannels), g)
            let input = [Float](repeating: 1, count: g.inputElementCount)
            XCTAssertThrowsError(try withOutput(outputSlots) { output in
                try input.withUnsafeBufferPointer { source in
                    try DepthwiseConvolution.apply(input: source, weights: weights, bias: nil, residual: nil,
                                                   activation: activation, output: output, geometry: g,
                                                   inputStorage: .fp32, outputStorage: .bf16, context: .singleThreaded)
                }
            }, "\(g.kernel) \(activation), \(outputSlots) output slots")
        }
    }
}
