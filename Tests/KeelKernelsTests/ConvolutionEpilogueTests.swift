/// Depthwise, grouped, pointwise, strided and Winograd convolutions and dense layers with their
/// fused epilogues (bias, residual, every activation the C kernels fuse and one they do not),
/// at every SIMD level and with 1 and 2 threads, against a naive double-precision reference on
/// awkward sizes: odd channel counts, 1×1 spatial, stride 2 on odd inputs, uneven padding,
/// groups = channels and 1 < groups < channels, depths past the GEMM's pack and pass limits.
import KeelKernels
import XCTest

final class ConvolutionEpilogueTests: XCTestCase {
    struct Case {
        var geometry: Conv2DGeometry
        var activation: UnaryOperation
        var bias = true
        var residual = true
    }

    static func geometry(batch: Int = 1, _ height: Int, _ width: Int, in inputs: Int, out outputs: Int, kernel: Int = 3,
                         stride: Int = 1, dilation: Int = 1, padding: (Int, Int, Int, Int) = (1, 1, 1, 1),
                         groups: Int = 1, layout: ActivationLayout) -> Conv2DGeometry {
        Conv2DGeometry(batch: batch, input: Size2D(height, width), inputChannels: inputs, outputChannels: outputs,
                       kernel: Size2D(kernel, kernel), stride: Size2D(stride, stride), dilation: Size2D(dilation, dilation),
                       padding: Padding2D(top: padding.0, left: padding.1, bottom: padding.2, right: padding.3),
                       groups: groups, layout: layout)
    }

    /// groups = channels: 3×3 and 5×5, stride 1 and 2 (odd and even inputs, TF's uneven "same"
    /// padding), dilation 2, 1×1 spatial, and an activation the kernel leaves to a second pass.
    static func depthwiseCases(_ layout: ActivationLayout) -> [Case] {
        [
            Case(geometry: geometry(batch: 2, 13, 11, in: 37, out: 37, groups: 37, layout: layout), activation: .swish),
            Case(geometry: geometry(15, 15, in: 17, out: 17, stride: 2, groups: 17, layout: layout),
                 activation: .clip(min: 0, max: 6), residual: false),
            Case(geometry: geometry(9, 7, in: 3, out: 3, kernel: 5, stride: 2, padding: (2, 2, 2, 2), groups: 3,
                                    layout: layout), activation: .hardSwish),
            Case(geometry: geometry(1, 1, in: 40, out: 40, groups: 40, layout: layout), activation: .sigmoid),
            Case(geometry: geometry(8, 9, in: 24, out: 24, kernel: 5, dilation: 2, padding: (4, 4, 4, 4), groups: 24,
                                    layout: layout), activation: .leakyRelu(alpha: 0.1), bias: false),
            Case(geometry: geometry(10, 10, in: 19, out: 19, stride: 2, padding: (0, 0, 1, 1), groups: 19, layout: layout),
                 activation: .gelu),
            Case(geometry: geometry(batch: 3, 6, 5, in: 70, out: 70, kernel: 5, padding: (2, 2, 2, 2), groups: 70,
                                    layout: layout), activation: .tanh, residual: false),
        ]
    }

    /// The GEMM paths: 1 < groups < channels, pointwise (shallow, packed, several depth passes),
    /// strided im2col on an odd input, few input channels (direct), Winograd.
    static func gemmCases(_ layout: ActivationLayout) -> [Case] {
        [
            Case(geometry: geometry(7, 9, in: 12, out: 18, groups: 3, layout: layout), activation: .relu),
            Case(geometry: geometry(9, 9, in: 8, out: 8, stride: 2, groups: 2, layout: layout),
                 activation: .hardSigmoid(alpha: 0.2, beta: 0.5)),
            Case(geometry: geometry(batch: 2, 5, 7, in: 19, out: 45, kernel: 1, padding: (0, 0, 0, 0), layout: layout),
                 activation: .relu),
            Case(geometry: geometry(3, 3, in: 200, out: 70, kernel: 1, padding: (0, 0, 0, 0), layout: layout),
                 activation: .tanh, residual: false),
            Case(geometry: geometry(2, 2, in: 600, out: 33, kernel: 1, padding: (0, 0, 0, 0), layout: layout),
                 activation: .swish),
            Case(geometry: geometry(1, 1, in: 16, out: 10, kernel: 1, padding: (0, 0, 0, 0), groups: 2, layout: layout),
                 activation: .identity),
            Case(geometry: geometry(11, 11, in: 5, out: 35, stride: 2, layout: layout), activation: .clip(min: -1, max: 1)),
            Case(geometry: geometry(6, 7, in: 3, out: 20, layout: layout), activation: .relu),
            Case(geometry: geometry(24, 20, in: 16, out: 17, layout: layout), activation: .relu),
            Case(geometry: geometry(batch: 2, 4, 5, in: 150, out: 40, kernel: 3, stride: 2, layout: layout),
                 activation: .gelu),
        ]
    }

    /// Seeded operands of `testCase` and the reference's output for them.
    struct Operands {
        var hwio: [Float], input: [Float], bias: [Float]?, residual: [Float]?, expected: [Float]

        init(_ testCase: Case, seed: UInt64) {
            let g = testCase.geometry
            hwio = seededValues(g.kernel.height * g.kernel.width * g.inputChannelsPerGroup * g.outputChannels, seed: seed)
            input = seededValues(g.inputElementCount, seed: seed + 1)
            bias = testCase.bias ? seededValues(g.outputChannels, seed: seed + 2) : nil
            residual = testCase.residual ? seededValues(g.outputElementCount, seed: seed + 3) : nil
            expected = NaiveConvolution(geometry: g, hwio: hwio, bias: bias, residual: residual,
                                        activation: testCase.activation).run(input)
        }
    }

    /// Runs `testCase` with the default algorithm.
    func run(_ testCase: Case, _ operands: Operands, threads: Int) throws -> [Float] {
        let g = testCase.geometry
        let (hwio, input, bias, residual) = (operands.hwio, operands.input, operands.bias, operands.residual)
        let weights = try hwio.withUnsafeBufferPointer {
            try PackedConv2DWeights(hwio: $0, kernel: g.kernel, inputChannelsPerGroup: g.inputChannelsPerGroup,
                                    outputChannels: g.outputChannels, groups: g.groups)
        }
        var scratch = [Float](repeating: .nan, count: Conv2D.scratchSize(for: g, threads: threads))
        return try withOutput(g.outputElementCount) { output in
            try input.withUnsafeBufferPointer { source in
                try scratch.withUnsafeMutableBufferPointer { scratch in
                    try (bias ?? []).withUnsafeBufferPointer { biasBuffer in
                        try (residual ?? []).withUnsafeBufferPointer { residualBuffer in
                            try Conv2D.apply(input: source, weights: weights, bias: bias == nil ? nil : biasBuffer,
                                             residual: residual == nil ? nil : residualBuffer,
                                             activation: testCase.activation, output: output, geometry: g,
                                             scratch: scratch, context: KernelContext(threads: threads))
                        }
                    }
                }
            }
        }
    }

    func check(_ cases: [Case], label: String) throws {
        for (index, testCase) in cases.enumerated() {
            let operands = Operands(testCase, seed: UInt64(100 * index))
            try forEachCapabilitySet { level in
                for threads in [1, 2] {
                    let actual = try run(testCase, operands, threads: threads)
                    assertClose(actual, operands.expected, "\(label) case \(index) \(testCase.geometry.layout) "
                                + "\(Conv2D.defaultAlgorithm(for: testCase.geometry)) \(level) threads \(threads)",
                                tolerance: 2e-5)
                }
            }
        }
    }

    func testDepthwiseMatchesReferenceAtEveryLevel() throws {
        for layout in [ActivationLayout.nhwc, .nchw] {
            try check(Self.depthwiseCases(layout), label: "depthwise")
        }
    }

    func testGEMMPathsMatchReferenceAtEveryLevel() throws {
        for layout in [ActivationLayout.nhwc, .nchw] {
            try check(Self.gemmCases(layout), label: "gemm")
        }
    }

    func testAlgorithmChoice() {
        let depthwise = Self.geometry(12, 12, in: 32, out: 32, groups: 32, layout: .nchw)
        let grouped = Self.geometry(12, 12, in: 32, out: 32, groups: 4, layout: .nhwc)
        forEachCapabilitySet { capabilities in
            XCTAssertEqual(Conv2D.defaultAlgorithm(for: depthwise), capabilities.isEmpty ? .im2colGEMM : .depthwise)
            XCTAssertEqual(Conv2D.defaultAlgorithm(for: grouped), .im2colGEMM)
        }
        XCTAssertEqual(Conv2D.defaultAlgorithm(for: Self.geometry(30, 30, in: 16, out: 16, layout: .nhwc)), .winograd)
    }

    func testDenseEpilogueMatchesReference() throws {
        for (rows, inFeatures, outFeatures) in [(1, 300, 70), (5, 17, 33), (9, 700, 40)] {
            for layout in [DenseWeightLayout.inOut, .outIn] {
                for activation in [UnaryOperation.swish, .relu, .gelu] {
                    let kernel = seededValues(inFeatures * outFeatures, seed: 5)
                    let input = seededValues(rows * inFeatures, seed: 6)
                    let bias = seededValues(outFeatures, seed: 7)
                    let residual = seededValues(rows * outFeatures, seed: 8)
                    var expected = [Float](repeating: 0, count: rows * outFeatures)
                    for row in 0..<rows {
                        for column in 0..<outFeatures {
                            var sum = Double(bias[column]) + Double(residual[row * outFeatures + column])
                            for p in 0..<inFeatures {
                                let weight = layout == .inOut ? kernel[p * outFeatures + column] : kernel[column * inFeatures + p]
                                sum += Double(input[row * inFeatures + p]) * Double(weight)
                            }
                            expected[row * outFeatures + column] = Float(NaiveConvolution.activate(sum, activation))
                        }
                    }
                    try forEachCapabilitySet { level in
                        for threads in [1, 2] {
                            let actual = try withOutput(rows * outFeatures) { output in
                                try input.withUnsafeBufferPointer { input in
                                    try kernel.withUnsafeBufferPointer { kernel in
                                        try bias.withUnsafeBufferPointer { bias in
                                            try residual.withUnsafeBufferPointer { residual in
                                                try Dense.apply(input: input, rows: rows, inFeatures: inFeatures,
                                                                outFeatures: outFeatures, kernel: kernel, layout: layout,
                                                                bias: bias, residual: residual, activation: activation,
                                                                output: output, context: KernelContext(threads: threads))
                                            }
                                        }
                                    }
                                }
                            }
                            assertClose(actual, expected, "dense \(rows)×\(inFeatures)×\(outFeatures) \(layout) "
                                        + "\(activation) \(level) threads \(threads)", tolerance: 2e-5)
                        }
                    }
                }
            }
        }
    }
}
