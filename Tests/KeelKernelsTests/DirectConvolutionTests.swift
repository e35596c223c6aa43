/// The direct convolution (few input channels) at every SIMD level: against ONNX Runtime's
/// convolution fixtures, against the im2col GEMM path on awkward sizes and on VGG16's first layer,
/// and for identical values whatever the thread count and level.
import KeelKernels
import XCTest

final class DirectConvolutionTests: XCTestCase {
    /// One convolution to run: geometry, data and the fused epilogue.
    struct Problem {
        var geometry: Conv2DGeometry
        var input: [Float]
        var weights: PackedConv2DWeights
        var bias: [Float]?
        var activation: UnaryOperation = .identity
        /// A tensor of the output's extents added before the activation (a shortcut).
        var residual: [Float]?
    }

    /// `inputLayout`: the layout `problem.input` is in when it is not the output's.
    func run(_ problem: Problem, algorithm: Conv2DAlgorithm, threads: Int,
             inputLayout: ActivationLayout? = nil) throws -> [Float] {
        let geometry = problem.geometry
        var scratch = [Float](repeating: .nan,
                              count: Conv2D.scratchSize(for: geometry, algorithm: algorithm, threads: threads,
                                                        inputLayout: inputLayout))
        return try withOutput(geometry.outputElementCount) { output in
            try problem.input.withUnsafeBufferPointer { source in
                try scratch.withUnsafeMutableBufferPointer { buffer in
                    let scratchBuffer = buffer
                    let apply = { (bias: UnsafeBufferPointer<Float>?, residual: UnsafeBufferPointer<Float>?) in
                        try Conv2D.apply(input: source, weights: problem.weights, bias: bias, residual: residual,
                                         activation: problem.activation, output: output, geometry: geometry,
                                         scratch: scratchBuffer, algorithm: algorithm, inputLayout: inputLayout,
                                         context: KernelContext(threads: threads))
                    }
                    let withResidual = { (bias: UnsafeBufferPointer<Float>?) in
                        if let residual = problem.residual {
                            try residual.withUnsafeBufferPointer { try apply(bias, $0) }
                        } else {
                            try apply(bias, nil)
                        }
                    }
                    if let bias = problem.bias {
                        try bias.withUnsafeBufferPointer { try withResidual($0) }
                    } else {
                        try withResidual(nil)
                    }
                }
            }
        }
    }

    /// Seeded data for `geometry`, the filter given as HWIO.
    func randomProblem(_ geometry: Conv2DGeometry, activation: UnaryOperation, bias: Bool = true,
                       seed: UInt64) throws -> Problem {
        let taps = geometry.kernel.height * geometry.kernel.width * geometry.inputChannels
        let hwio = seededValues(taps * geometry.outputChannels, seed: seed + 1)
        let weights = try hwio.withUnsafeBufferPointer {
            try PackedConv2DWeights(hwio: $0, kernel: geometry.kernel, inputChannelsPerGroup: geometry.inputChannels,
                                    outputChannels: geometry.outputChannels)
        }
        return Problem(geometry: geometry, input: seededValues(geometry.inputElementCount, seed: seed),
                       weights: weights, bias: bias ? seededValues(geometry.outputChannels, seed: seed + 2) : nil,
                       activation: activation)
    }

    func fixtureProblem(_ fixture: FixtureCase) throws -> Problem? {
        guard let x = fixture.input("x"), let kernelTensor = fixture.input("kernel"),
              let kernel = fixture.ints("kernel"), let strides = fixture.ints("strides"),
              let dilations = fixture.ints("dilations"), let pads = fixture.ints("pads"),
              let groups = fixture.int("groups") else {
            XCTFail("\(fixture.name): incomplete case")
            return nil
        }
        guard groups == 1 else { return nil }
        let nhwc = fixture.string("layout") != "nchw"
        let shape = x.shape
        let geometry = Conv2DGeometry(
            batch: shape[0], input: nhwc ? Size2D(shape[1], shape[2]) : Size2D(shape[2], shape[3]),
            inputChannels: nhwc ? shape[3] : shape[1],
            outputChannels: nhwc ? kernelTensor.shape[3] : kernelTensor.shape[0],
            kernel: Size2D(kernel[0], kernel[1]), stride: Size2D(strides[0], strides[1]),
            dilation: Size2D(dilations[0], dilations[1]), padding: try Padding2D(pads), layout: nhwc ? .nhwc : .nchw)
        let values = try Fixtures.floats(kernelTensor)
        let weights = try values.withUnsafeBufferPointer { buffer in
            nhwc ? try PackedConv2DWeights(hwio: buffer, kernel: geometry.kernel,
                                           inputChannelsPerGroup: geometry.inputChannels,
                                           outputChannels: geometry.outputChannels)
                 : try PackedConv2DWeights(oihw: buffer, kernel: geometry.kernel,
                                           inputChannelsPerGroup: geometry.inputChannels,
                                           outputChannels: geometry.outputChannels)
        }
        let activation: UnaryOperation
        switch fixture.string("activation") ?? "none" {
        case "relu": activation = .relu
        case "leaky_relu": activation = .leakyRelu(alpha: fixture.float("alpha") ?? 0)
        case "clip": activation = .clip(min: fixture.float("min") ?? 0, max: fixture.float("max") ?? 0)
        case "sigmoid": activation = .sigmoid
        case "tanh": activation = .tanh
        default: activation = .identity
        }
        return Problem(geometry: geometry, input: try Fixtures.floats(x), weights: weights,
                       bias: try fixture.input("bias").map { try Fixtures.floats($0) }, activation: activation)
    }

    func testMatchesONNXRuntimeAtEveryLevel() throws {
        var checked = 0
        for fixture in Fixtures.cases("conv2d") {
            guard let problem = try fixtureProblem(fixture) else { continue }
            let expected = try Fixtures.expected(fixture).values
            try forEachCapabilitySet { level in
                for threads in [1, 2] {
                    let actual = try run(problem, algorithm: .direct, threads: threads)
                    assertClose(actual, expected, "\(fixture.name) \(level) threads \(threads)")
                }
            }
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 10, "the one-group fixtures must all be found")
    }

    /// Sizes that leave partial register blocks everywhere: widths not a multiple of any pixel
    /// block, output channels not a multiple of 16, batch > 1, paddings 0, 1 and uneven, strides,
    /// dilations, and activations the kernel fuses (ReLU) and those applied after it.
    var awkwardGeometries: [(Conv2DGeometry, UnaryOperation, Bool)] {
        let same = Padding2D(top: 1, left: 1, bottom: 1, right: 1)
        var cases: [(Conv2DGeometry, UnaryOperation, Bool)] = []
        for layout in [ActivationLayout.nhwc, .nchw] {
            cases += [
                (Conv2DGeometry(batch: 3, input: Size2D(13, 29), inputChannels: 3, outputChannels: 37,
                                kernel: Size2D(3, 3), padding: same, layout: layout), .relu, true),
                (Conv2DGeometry(batch: 2, input: Size2D(9, 35), inputChannels: 1, outputChannels: 5,
                                kernel: Size2D(3, 3), layout: layout), .identity, false),
                (Conv2DGeometry(batch: 1, input: Size2D(17, 50), inputChannels: 4, outputChannels: 70,
                                kernel: Size2D(5, 5), stride: Size2D(2, 2),
                                padding: Padding2D(top: 2, left: 2, bottom: 2, right: 2), layout: layout), .relu, true),
                (Conv2DGeometry(batch: 2, input: Size2D(11, 23), inputChannels: 2, outputChannels: 16,
                                kernel: Size2D(3, 2), stride: Size2D(1, 2), dilation: Size2D(2, 1),
                                padding: Padding2D(top: 0, left: 1, bottom: 2, right: 0), layout: layout),
                 .sigmoid, true),
                (Conv2DGeometry(batch: 2, input: Size2D(6, 7), inputChannels: 3, outputChannels: 33,
                                kernel: Size2D(3, 3), padding: same, layout: layout),
                 .clip(min: -0.25, max: 0.5), true),
                // A ResNet stem (7×7, stride 2, padding 3) on an odd width: the taps' columns
                // alternate between the two phase lines of each input row.
                (Conv2DGeometry(batch: 1, input: Size2D(10, 31), inputChannels: 3, outputChannels: 24,
                                kernel: Size2D(7, 7), stride: Size2D(2, 2),
                                padding: Padding2D(top: 3, left: 3, bottom: 3, right: 3), layout: layout), .relu, true),
                // Stride 3 with dilation 2 and uneven padding: kernel columns 0, 2, 4 fall in
                // phases 0, 2, 1.
                (Conv2DGeometry(batch: 2, input: Size2D(8, 26), inputChannels: 2, outputChannels: 9,
                                kernel: Size2D(2, 3), stride: Size2D(1, 3), dilation: Size2D(1, 2),
                                padding: Padding2D(top: 1, left: 2, bottom: 0, right: 1), layout: layout),
                 .identity, false),
                // A Keras stem (3×3, stride 2, "same" on an even width: padding only after): the
                // NHWC row's pixel pairs de-interleave into six lines, the last pair half padding.
                (Conv2DGeometry(batch: 2, input: Size2D(9, 38), inputChannels: 3, outputChannels: 32,
                                kernel: Size2D(3, 3), stride: Size2D(2, 2),
                                padding: Padding2D(top: 0, left: 0, bottom: 1, right: 1), layout: layout),
                 .clip(min: 0, max: 6), true),
                // Two-row images: the last output row of one image and the first of the next read
                // the same row numbers, of different images (rows held over must be told apart).
                (Conv2DGeometry(batch: 3, input: Size2D(2, 9), inputChannels: 3, outputChannels: 8,
                                kernel: Size2D(3, 3), padding: same, layout: layout), .relu, true),
            ]
        }
        return cases
    }

    func testMatchesIm2colOnAwkwardSizes() throws {
        for (index, (geometry, activation, bias)) in awkwardGeometries.enumerated() {
            let problem = try randomProblem(geometry, activation: activation, bias: bias, seed: UInt64(10 * index))
            let expected = try run(problem, algorithm: .im2colGEMM, threads: 1)
            var first: [Float]?
            try forEachCapabilitySet { level in
                for threads in [1, 2] {
                    let actual = try run(problem, algorithm: .direct, threads: threads)
                    assertClose(actual, expected, "case \(index) \(geometry.layout) \(level) threads \(threads)",
                                tolerance: 1e-5)
                    guard !level.isEmpty else { continue }
                    // Every level and thread count sums in the same order: identical values.
                    if let first {
                        XCTAssertEqual(actual, first, "case \(index) \(level) threads \(threads) differs")
                    } else {
                        first = actual
                    }
                }
            }
        }
    }

    /// The input in the other layout than the output (a PyTorch graph's NCHW image into an NHWC
    /// stem, and the reverse), on every awkward size: the same values as the direct kernel on the
    /// input in the output's layout, at every level (without a SIMD level, im2col on the input
    /// transposed in scratch) and thread count.
    func testReadsAnInputInTheOtherLayout() throws {
        for (index, (geometry, activation, bias)) in awkwardGeometries.enumerated() {
            let problem = try randomProblem(geometry, activation: activation, bias: bias, seed: UInt64(10 * index + 3))
            var other = problem
            let (height, width, channels) = (geometry.input.height, geometry.input.width, geometry.inputChannels)
            let otherLayout: ActivationLayout = geometry.layout == .nhwc ? .nchw : .nhwc
            for image in 0..<geometry.batch {
                for y in 0..<height {
                    for x in 0..<width {
                        for c in 0..<channels {
                            let channelsLast = ((image * height + y) * width + x) * channels + c
                            let channelsFirst = ((image * channels + c) * height + y) * width + x
                            if geometry.layout == .nhwc {
                                other.input[channelsFirst] = problem.input[channelsLast]
                            } else {
                                other.input[channelsLast] = problem.input[channelsFirst]
                            }
                        }
                    }
                }
            }
            let expected = try run(problem, algorithm: .im2colGEMM, threads: 1)
            try forEachCapabilitySet { level in
                let same = try run(problem, algorithm: .direct, threads: 1)
                for threads in [1, 2] {
                    let actual = try run(other, algorithm: .direct, threads: threads, inputLayout: otherLayout)
                    let label = "case \(index) \(otherLayout) input, \(geometry.layout) output, \(level) threads \(threads)"
                    assertClose(actual, expected, label, tolerance: 1e-5)
                    if !level.isEmpty { XCTAssertTrue(actual == same, label + ": differs from the same-layout input") }
                }
            }
        }
    }

    func testOnlyTheDirectAlgorithmReadsAnotherLayout() throws {
        let geometry = Conv2DGeometry(batch: 1, input: Size2D(6, 6), inputChannels: 3, outputChannels: 4,
                                      kernel: Size2D(3, 3))
        let problem = try randomProblem(geometry, activation: .identity, seed: 5)
        XCTAssertThrowsError(try run(problem, algorithm: .im2colGEMM, threads: 1, inputLayout: .nchw)) { error in
            XCTAssertTrue("\(error)".contains("only the direct algorithm"), "\(error)")
        }
    }

    /// Every epilogue the kernel fuses (the clamps through bounds set once per block, the others
    /// through the shared activations), with and without a residual, on partial blocks in both
    /// layouts: MobileNet's ReLU6 stem and EfficientNet's swish stem among them.
    func testFusedEpiloguesMatchIm2col() throws {
        let activations: [UnaryOperation] = [.identity, .relu, .clip(min: 0, max: 6), .clip(min: -0.25, max: 0.5),
                                             .swish, .hardSwish, .leakyRelu(alpha: 0.1)]
        var index = 0
        for layout in [ActivationLayout.nhwc, .nchw] {
            let geometry = Conv2DGeometry(batch: 2, input: Size2D(9, 21), inputChannels: 3, outputChannels: 19,
                                          kernel: Size2D(3, 3), stride: Size2D(2, 2),
                                          padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1), layout: layout)
            for activation in activations {
                for residual in [false, true] {
                    index += 1
                    var problem = try randomProblem(geometry, activation: activation, seed: UInt64(500 + index))
                    if residual { problem.residual = seededValues(geometry.outputElementCount, seed: UInt64(900 + index)) }
                    let expected = try run(problem, algorithm: .im2colGEMM, threads: 1)
                    try forEachCapabilitySet { level in
                        for threads in [1, 2] {
                            let actual = try run(problem, algorithm: .direct, threads: threads)
                            assertClose(actual, expected, "\(layout) \(activation) residual \(residual) \(level) threads \(threads)",
                                        tolerance: 1e-5)
                        }
                    }
                }
            }
        }
    }

    /// VGG16's block1_conv1: 224×224 RGB -> 64 channels, 3×3, padding 1, ReLU, in both layouts.
    func testVGGFirstLayerMatchesIm2col() throws {
        for layout in [ActivationLayout.nhwc, .nchw] {
            let geometry = Conv2DGeometry(batch: 1, input: Size2D(224, 224), inputChannels: 3, outputChannels: 64,
                                          kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1),
                                          layout: layout)
            XCTAssertEqual(geometry.output, Size2D(224, 224))
            let problem = try randomProblem(geometry, activation: .relu, seed: 77)
            let expected = try run(problem, algorithm: .im2colGEMM, threads: 2)
            try forEachCapabilitySet { level in
                let one = try run(problem, algorithm: .direct, threads: 1)
                let two = try run(problem, algorithm: .direct, threads: 2)
                assertClose(one, expected, "VGG first layer \(layout) \(level) 1 thread", tolerance: 1e-5)
                assertClose(two, expected, "VGG first layer \(layout) \(level)", tolerance: 1e-5)
                // Keel's own kernels sum in one order whatever the split; without a SIMD level the
                // convolution is OpenBLAS's, whose edge kernels (Haswell/Zen) may round differently.
                if !level.isEmpty {
                    XCTAssertEqual(one, two, "VGG first layer \(layout) \(level): 1 and 2 threads differ")
                }
            }
        }
    }

    func testDefaultAlgorithmPicksDirectForFewInputChannels() {
        let rgb = Conv2DGeometry(batch: 1, input: Size2D(224, 224), inputChannels: 3, outputChannels: 64,
                                 kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1))
        var wide = rgb
        wide.inputChannels = 64
        var grouped = rgb
        grouped.inputChannels = 4
        grouped.groups = 2
        // ConvNeXt's 4×4 stem (48 deep) and ResNet's 7×7 (147) stay direct; ViT's 16×16 patch
        // embedding (768 deep) is a deep GEMM for im2col.
        let stem = Conv2DGeometry(batch: 1, input: Size2D(224, 224), inputChannels: 3, outputChannels: 64,
                                  kernel: Size2D(7, 7), stride: Size2D(2, 2),
                                  padding: Padding2D(top: 3, left: 3, bottom: 3, right: 3))
        let patches = Conv2DGeometry(batch: 1, input: Size2D(224, 224), inputChannels: 3, outputChannels: 768,
                                     kernel: Size2D(16, 16), stride: Size2D(16, 16))
        forEachCapabilitySet { level in
            XCTAssertEqual(Conv2D.defaultAlgorithm(for: rgb), !level.isEmpty ? .direct : .im2colGEMM, "\(level)")
            XCTAssertEqual(Conv2D.defaultAlgorithm(for: stem), !level.isEmpty ? .direct : .im2colGEMM, "\(level)")
            XCTAssertEqual(Conv2D.defaultAlgorithm(for: patches), .im2colGEMM, "\(level)")
            XCTAssertNotEqual(Conv2D.defaultAlgorithm(for: wide), .direct)
            XCTAssertNotEqual(Conv2D.defaultAlgorithm(for: grouped), .direct)
        }
        // The direct scratch also holds im2col's tile, the fallback when no SIMD level is in use.
        XCTAssertGreaterThanOrEqual(Conv2D.scratchSize(for: rgb, algorithm: .direct),
                                    Conv2D.scratchSize(for: rgb, algorithm: .im2colGEMM))
    }

    func testDirectWithGroupsOrSmallScratchThrows() throws {
        let geometry = Conv2DGeometry(batch: 1, input: Size2D(8, 8), inputChannels: 4, outputChannels: 4,
                                      kernel: Size2D(3, 3), groups: 2)
        let weights = try [Float](repeating: 0, count: 9 * 2 * 4).withUnsafeBufferPointer {
            try PackedConv2DWeights(hwio: $0, kernel: Size2D(3, 3), inputChannelsPerGroup: 2, outputChannels: 4,
                                    groups: 2)
        }
        let input = [Float](repeating: 1, count: geometry.inputElementCount)
        var output = [Float](repeating: 0, count: geometry.outputElementCount)
        var scratch = [Float](repeating: 0, count: 4096)
        XCTAssertThrowsError(try input.withUnsafeBufferPointer { source in
            try output.withUnsafeMutableBufferPointer { destination in
                try scratch.withUnsafeMutableBufferPointer { buffer in
                    try Conv2D.apply(input: source, weights: weights, output: destination, geometry: geometry,
                                     scratch: buffer, algorithm: .direct)
                }
            }
        })
        var single = geometry
        single.groups = 1
        single.inputChannels = 2
        let singleWeights = try [Float](repeating: 0, count: 9 * 2 * 4).withUnsafeBufferPointer {
            try PackedConv2DWeights(hwio: $0, kernel: Size2D(3, 3), inputChannelsPerGroup: 2, outputChannels: 4)
        }
        var tooSmall = [Float](repeating: 0, count: 3)
        XCTAssertThrowsError(try input.withUnsafeBufferPointer { source in
            try output.withUnsafeMutableBufferPointer { destination in
                try tooSmall.withUnsafeMutableBufferPointer { buffer in
                    try Conv2D.apply(input: source, weights: singleWeights, output: destination, geometry: single,
                                     scratch: buffer, algorithm: .direct)
                }
            }
        })
    }
}
