/// Conv2D against ONNX Runtime fixtures (both layouts, both weight layouts), the tiled im2col
/// path against a direct convolution written out in the test, the scratch bound, and thread-count
/// independence.
import KeelKernels
import XCTest

final class ConvolutionTests: XCTestCase {
    func activation(_ fixture: FixtureCase) -> UnaryOperation {
        switch fixture.string("activation") ?? "none" {
        case "relu": return .relu
        case "leaky_relu": return .leakyRelu(alpha: fixture.float("alpha") ?? 0)
        case "clip": return .clip(min: fixture.float("min") ?? 0, max: fixture.float("max") ?? 0)
        case "sigmoid": return .sigmoid
        case "tanh": return .tanh
        default: return .identity
        }
    }

    func testConvolutionMatchesONNXRuntime() throws {
        for fixture in Fixtures.cases("conv2d") {
            guard let x = fixture.input("x"), let kernelTensor = fixture.input("kernel"),
                  let kernel = fixture.ints("kernel"), let strides = fixture.ints("strides"),
                  let dilations = fixture.ints("dilations"), let pads = fixture.ints("pads"),
                  let groups = fixture.int("groups") else { return XCTFail("\(fixture.name): incomplete case") }
            let layout: ActivationLayout = fixture.string("layout") == "nchw" ? .nchw : .nhwc
            let (batch, height, width, channels) = layout == .nhwc
                ? (x.shape[0], x.shape[1], x.shape[2], x.shape[3]) : (x.shape[0], x.shape[2], x.shape[3], x.shape[1])
            let outputChannels = layout == .nhwc ? kernelTensor.shape[3] : kernelTensor.shape[0]
            let geometry = Conv2DGeometry(batch: batch, input: Size2D(height, width), inputChannels: channels,
                                          outputChannels: outputChannels, kernel: Size2D(kernel[0], kernel[1]),
                                          stride: Size2D(strides[0], strides[1]),
                                          dilation: Size2D(dilations[0], dilations[1]),
                                          padding: try Padding2D(pads), groups: groups, layout: layout)
            let kernelValues = try Fixtures.floats(kernelTensor)
            let weights = try kernelValues.withUnsafeBufferPointer { buffer in
                layout == .nhwc
                    ? try PackedConv2DWeights(hwio: buffer, kernel: geometry.kernel,
                                              inputChannelsPerGroup: channels / groups,
                                              outputChannels: outputChannels, groups: groups)
                    : try PackedConv2DWeights(oihw: buffer, kernel: geometry.kernel,
                                              inputChannelsPerGroup: channels / groups,
                                              outputChannels: outputChannels, groups: groups)
            }
            let input = try Fixtures.floats(x)
            let bias = try fixture.input("bias").map { try Fixtures.floats($0) }
            let expected = try Fixtures.expected(fixture)
            XCTAssertEqual(geometry.outputElementCount, expected.values.count, fixture.name)
            var scratch = [Float](repeating: .nan, count: Conv2D.scratchSize(for: geometry))
            for threads in [1, 2] {
                let context = KernelContext(threads: threads)
                let actual = try withOutput(geometry.outputElementCount) { output in
                    try input.withUnsafeBufferPointer { source in
                        try scratch.withUnsafeMutableBufferPointer { scratchBuffer in
                            if let bias {
                                try bias.withUnsafeBufferPointer { biasBuffer in
                                    try Conv2D.apply(input: source, weights: weights, bias: biasBuffer,
                                                     activation: activation(fixture), output: output, geometry: geometry,
                                                     scratch: scratchBuffer, context: context)
                                }
                            } else {
                                try Conv2D.apply(input: source, weights: weights, activation: activation(fixture),
                                                 output: output, geometry: geometry, scratch: scratchBuffer,
                                                 context: context)
                            }
                        }
                    }
                }
                assertClose(actual, expected.values, "\(fixture.name) threads \(threads)")
            }
        }
    }

    func runConvolution(_ input: [Float], hwio: [Float], bias: [Float], _ geometry: Conv2DGeometry,
                        threads: Int) throws -> [Float] {
        let weights = try hwio.withUnsafeBufferPointer {
            try PackedConv2DWeights(hwio: $0, kernel: geometry.kernel, inputChannelsPerGroup: geometry.inputChannelsPerGroup,
                                    outputChannels: geometry.outputChannels, groups: geometry.groups)
        }
        var scratch = [Float](repeating: .nan, count: Conv2D.scratchSize(for: geometry))
        return try withOutput(geometry.outputElementCount) { output in
            try input.withUnsafeBufferPointer { source in
                try bias.withUnsafeBufferPointer { biasBuffer in
                    try scratch.withUnsafeMutableBufferPointer { scratchBuffer in
                        try Conv2D.apply(input: source, weights: weights, bias: biasBuffer, output: output,
                                         geometry: geometry, scratch: scratchBuffer,
                                         context: KernelContext(threads: threads))
                    }
                }
            }
        }
    }

    /// Large enough that the im2col path needs several tiles (the last one partial).
    func testTiledConvolutionMatchesDirectConvolution() throws {
        for layout in [ActivationLayout.nhwc, .nchw] {
            let geometry = Conv2DGeometry(batch: 2, input: Size2D(53, 41), inputChannels: 64, outputChannels: 6,
                                          kernel: Size2D(3, 3), stride: .one, padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1),
                                          layout: layout)
            let scratch = Conv2D.scratchSize(for: geometry)
            let pixels = layout == .nhwc ? 2 * 53 * 41 : 53 * 41
            XCTAssertLessThan(scratch, pixels * 576, "the tile must be smaller than the whole column matrix")
            let input = seededValues(geometry.inputElementCount, seed: 1)
            let hwio = seededValues(3 * 3 * 64 * 6, seed: 2)
            let bias = seededValues(6, seed: 3)
            let actual = try runConvolution(input, hwio: hwio, bias: bias, geometry, threads: 1)
            assertClose(actual, directConvolution(input, hwio: hwio, bias: bias, geometry), "tiled \(layout)")
        }
    }

    func testOneAndTwoThreadsAgree() throws {
        for layout in [ActivationLayout.nhwc, .nchw] {
            let geometry = Conv2DGeometry(batch: 1, input: Size2D(40, 40), inputChannels: 64, outputChannels: 32,
                                          kernel: Size2D(3, 3), stride: Size2D(2, 2),
                                          padding: Padding2D(top: 0, left: 0, bottom: 1, right: 1), layout: layout)
            let input = seededValues(geometry.inputElementCount, seed: 4)
            let hwio = seededValues(3 * 3 * 64 * 32, seed: 5)
            let bias = seededValues(32, seed: 6)
            let one = try runConvolution(input, hwio: hwio, bias: bias, geometry, threads: 1)
            let two = try runConvolution(input, hwio: hwio, bias: bias, geometry, threads: 2)
            assertClose(two, one, "conv threads \(layout)", tolerance: 1e-5)
        }
    }

    func testColumnBufferStaysBoundedForLargeLayer() {
        let geometry = Conv2DGeometry(batch: 1, input: Size2D(224, 224), inputChannels: 64, outputChannels: 64,
                                      kernel: Size2D(3, 3),
                                      padding: .same(input: Size2D(224, 224), kernel: Size2D(3, 3), stride: .one))
        XCTAssertEqual(geometry.output, Size2D(224, 224))
        let bytes = Conv2D.scratchSize(for: geometry) * MemoryLayout<Float>.size
        XCTAssertLessThanOrEqual(bytes, 4 << 20, "column buffer must stay within a few MB")
        XCTAssertGreaterThan(bytes, 0)
        let pointwise = Conv2DGeometry(batch: 1, input: Size2D(7, 7), inputChannels: 512, outputChannels: 768,
                                       kernel: .one)
        XCTAssertEqual(Conv2D.defaultAlgorithm(for: pointwise), .pointwise)
        XCTAssertEqual(Conv2D.scratchSize(for: pointwise), 0)
    }

    func testSamePaddingPutsTheOddPixelBottomRight() {
        let padding = Padding2D.same(input: Size2D(7, 8), kernel: Size2D(3, 3), stride: Size2D(2, 2))
        XCTAssertEqual(padding, Padding2D(top: 1, left: 0, bottom: 1, right: 1))
    }

    func testBadInputThrowsInsteadOfTrapping() throws {
        let geometry = Conv2DGeometry(batch: 1, input: Size2D(2, 2), inputChannels: 3, outputChannels: 4,
                                      kernel: Size2D(3, 3))
        XCTAssertThrowsError(try geometry.validate())
        let weights = try [Float](repeating: 0, count: 27 * 4).withUnsafeBufferPointer {
            try PackedConv2DWeights(hwio: $0, kernel: Size2D(3, 3), inputChannelsPerGroup: 3, outputChannels: 4)
        }
        let valid = Conv2DGeometry(batch: 1, input: Size2D(4, 4), inputChannels: 3, outputChannels: 4, kernel: Size2D(3, 3))
        let tooSmall = [Float](repeating: 0, count: 10)
        var output = [Float](repeating: 0, count: 16)
        var scratch = [Float](repeating: 0, count: Conv2D.scratchSize(for: valid))
        XCTAssertThrowsError(try tooSmall.withUnsafeBufferPointer { source in
            try output.withUnsafeMutableBufferPointer { destination in
                try scratch.withUnsafeMutableBufferPointer { buffer in
                    try Conv2D.apply(input: source, weights: weights, output: destination, geometry: valid, scratch: buffer)
                }
            }
        })
        XCTAssertThrowsError(try [Float](repeating: 0, count: 5).withUnsafeBufferPointer {
            try PackedConv2DWeights(oihw: $0, kernel: Size2D(3, 3), inputChannelsPerGroup: 3, outputChannels: 4)
        })
    }
}
