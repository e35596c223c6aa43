/// Winograd F(4×4, 3×3) against the im2col path on random data (odd sizes, channel counts that
/// are not multiples of the vector width, batch 1 and 5, both layouts, one and two threads), and
/// against the ONNX Runtime conv fixtures that fit a 3×3 stride-1 kernel.
import KeelKernels
import XCTest

final class WinogradTests: XCTestCase {
    /// max|a − b| / max|b|: Winograd's error grows with the magnitude of the whole tile, so it is
    /// judged against the layer's scale rather than element by element.
    func relativeError(_ actual: [Float], _ expected: [Float]) -> Float {
        let scale = expected.map { abs($0) }.max() ?? 0
        let difference = zip(actual, expected).map { abs($0 - $1) }.max() ?? 0
        return scale == 0 ? difference : difference / scale
    }

    func testWinogradMatchesIm2colOnAwkwardShapes() throws {
        let same = Padding2D(top: 1, left: 1, bottom: 1, right: 1)
        let shapes: [(batch: Int, height: Int, width: Int, inputs: Int, outputs: Int, padding: Padding2D)] = [
            (1, 7, 9, 19, 21, same),
            (5, 13, 5, 16, 33, same),
            (1, 4, 4, 3, 5, same),
            (5, 6, 11, 9, 7, .zero),
            (1, 1, 1, 17, 8, same),
            (1, 10, 8, 24, 16, Padding2D(top: 0, left: 2, bottom: 1, right: 0)),
        ]
        for (index, shape) in shapes.enumerated() {
            for layout in [ActivationLayout.nhwc, .nchw] {
                let geometry = Conv2DGeometry(batch: shape.batch, input: Size2D(shape.height, shape.width),
                                              inputChannels: shape.inputs, outputChannels: shape.outputs,
                                              kernel: Size2D(3, 3), padding: shape.padding, layout: layout)
                let seed = UInt64(10 * index)
                let input = seededValues(geometry.inputElementCount, seed: seed + 1)
                let weights = try packedWeights(seededValues(9 * shape.inputs * shape.outputs, seed: seed + 2), geometry)
                let bias = seededValues(shape.outputs, seed: seed + 3)
                let reference = try convolve(input, weights, bias: bias, activation: .relu, geometry,
                                             algorithm: .im2colGEMM, threads: 1)
                try forEachCapabilitySet { level in
                    for threads in [1, 2] {
                        let actual = try convolve(input, weights, bias: bias, activation: .relu, geometry,
                                                  algorithm: .winograd(.large), threads: threads)
                        XCTAssertLessThanOrEqual(relativeError(actual, reference), 1e-5,
                                                 "shape \(index) \(layout) threads \(threads) \(level)")
                    }
                }
            }
        }
    }

    /// A VGG-sized layer spans several tile blocks and both interior and border tiles.
    func testWinogradStaysWithinVGGTolerance() throws {
        for layout in [ActivationLayout.nhwc, .nchw] {
            let geometry = Conv2DGeometry(batch: 1, input: Size2D(30, 30), inputChannels: 128, outputChannels: 64,
                                          kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1),
                                          layout: layout)
            XCTAssertEqual(Conv2D.defaultAlgorithm(for: geometry), .winograd(.large))
            let input = seededValues(geometry.inputElementCount, seed: 40).map { max($0, 0) }
            let weights = try packedWeights(seededValues(9 * 128 * 64, seed: 41).map { $0 * 0.04 }, geometry)
            let bias = seededValues(64, seed: 42).map { $0 * 0.01 }
            let reference = try convolve(input, weights, bias: bias, activation: .identity, geometry,
                                         algorithm: .im2colGEMM, threads: 2)
            let transformed = try WinogradWeights(weights)
            var scratch = [Float](repeating: .nan, count: Conv2D.scratchSize(for: geometry))
            let actual = try withOutput(geometry.outputElementCount) { output in
                try input.withUnsafeBufferPointer { source in
                    try bias.withUnsafeBufferPointer { biasBuffer in
                        try scratch.withUnsafeMutableBufferPointer { scratchBuffer in
                            try Conv2D.apply(input: source, weights: transformed, bias: biasBuffer, output: output,
                                             geometry: geometry, scratch: scratchBuffer, context: KernelContext(threads: 2))
                        }
                    }
                }
            }
            XCTAssertLessThanOrEqual(relativeError(actual, reference), 1e-4, "\(layout)")
        }
    }

    /// Enough tiles (2 × 14 × 14 per image) for each of two threads to run its own pipeline when
    /// given the scratch for two; with the one-thread scratch they share blocks instead.
    func testIndependentPipelinesMatchSharedBlocks() throws {
        for layout in [ActivationLayout.nhwc, .nchw] {
            let geometry = Conv2DGeometry(batch: 2, input: Size2D(56, 56), inputChannels: 128, outputChannels: 128,
                                          kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1),
                                          layout: layout)
            let oneThread = Conv2D.scratchSize(for: geometry, algorithm: .winograd(.large))
            let twoThreads = Conv2D.scratchSize(for: geometry, algorithm: .winograd(.large), threads: 2)
            XCTAssertGreaterThan(twoThreads, oneThread)
            let input = seededValues(geometry.inputElementCount, seed: 50)
            let weights = try packedWeights(seededValues(9 * 128 * 128, seed: 51).map { $0 * 0.03 }, geometry)
            let bias = seededValues(128, seed: 52)
            let reference = try convolve(input, weights, bias: bias, activation: .relu, geometry,
                                         algorithm: .im2colGEMM, threads: 1)
            for scratchSize in [oneThread, twoThreads] {
                var scratch = [Float](repeating: .nan, count: scratchSize)
                let actual = try withOutput(geometry.outputElementCount) { output in
                    try input.withUnsafeBufferPointer { source in
                        try bias.withUnsafeBufferPointer { biasBuffer in
                            try scratch.withUnsafeMutableBufferPointer { scratchBuffer in
                                try Conv2D.apply(input: source, weights: weights, bias: biasBuffer, activation: .relu,
                                                 output: output, geometry: geometry, scratch: scratchBuffer,
                                                 algorithm: .winograd(.large), context: KernelContext(threads: 2))
                            }
                        }
                    }
                }
                XCTAssertLessThanOrEqual(relativeError(actual, reference), 1e-5, "\(layout) scratch \(scratchSize)")
            }
        }
    }

    func testONNXRuntimeFixturesThroughWinograd() throws {
        var checked = 0
        for fixture in Fixtures.cases("conv2d") {
            guard let x = fixture.input("x"), let kernelTensor = fixture.input("kernel"),
                  let kernel = fixture.ints("kernel"), let strides = fixture.ints("strides"),
                  let dilations = fixture.ints("dilations"), let pads = fixture.ints("pads"),
                  let groups = fixture.int("groups") else { return XCTFail("\(fixture.name): incomplete case") }
            guard kernel == [3, 3], strides == [1, 1], dilations == [1, 1], groups == 1 else { continue }
            let layout: ActivationLayout = fixture.string("layout") == "nchw" ? .nchw : .nhwc
            let (batch, height, width, channels) = layout == .nhwc
                ? (x.shape[0], x.shape[1], x.shape[2], x.shape[3]) : (x.shape[0], x.shape[2], x.shape[3], x.shape[1])
            let outputChannels = layout == .nhwc ? kernelTensor.shape[3] : kernelTensor.shape[0]
            let geometry = Conv2DGeometry(batch: batch, input: Size2D(height, width), inputChannels: channels,
                                          outputChannels: outputChannels, kernel: Size2D(3, 3),
                                          padding: try Padding2D(pads), layout: layout)
            let kernelValues = try Fixtures.floats(kernelTensor)
            let weights = try kernelValues.withUnsafeBufferPointer { buffer in
                layout == .nhwc
                    ? try PackedConv2DWeights(hwio: buffer, kernel: geometry.kernel, inputChannelsPerGroup: channels,
                                              outputChannels: outputChannels)
                    : try PackedConv2DWeights(oihw: buffer, kernel: geometry.kernel, inputChannelsPerGroup: channels,
                                              outputChannels: outputChannels)
            }
            let bias = try fixture.input("bias").map { try Fixtures.floats($0) }
                ?? [Float](repeating: 0, count: outputChannels)
            let activation: UnaryOperation = fixture.string("activation") == "relu" ? .relu : .identity
            guard ["relu", "none", nil].contains(fixture.string("activation")) else { continue }
            let actual = try convolve(try Fixtures.floats(x), weights, bias: bias, activation: activation, geometry,
                                      algorithm: .winograd(.large), threads: 2)
            assertClose(actual, try Fixtures.expected(fixture).values, fixture.name)
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 3, "the 3x3 stride-1 fixtures")
    }

    func testDispatchKeepsThinLayersOnIm2col() {
        let first = Conv2DGeometry(batch: 1, input: Size2D(224, 224), inputChannels: 3, outputChannels: 64,
                                   kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1))
        XCTAssertNil(Conv2D.defaultAlgorithm(for: first).winogradTile)
        let strided = Conv2DGeometry(batch: 1, input: Size2D(56, 56), inputChannels: 64, outputChannels: 64,
                                     kernel: Size2D(3, 3), stride: Size2D(2, 2))
        XCTAssertEqual(Conv2D.defaultAlgorithm(for: strided), .im2colGEMM)
    }

    func testWinogradRejectsUnsupportedGeometry() throws {
        let geometry = Conv2DGeometry(batch: 1, input: Size2D(8, 8), inputChannels: 4, outputChannels: 4,
                                      kernel: Size2D(3, 3), stride: Size2D(2, 2))
        let weights = try packedWeights([Float](repeating: 0.5, count: 9 * 16), geometry)
        XCTAssertThrowsError(try convolve([Float](repeating: 1, count: geometry.inputElementCount), weights,
                                          bias: [0, 0, 0, 0], activation: .identity, geometry,
                                          algorithm: .winograd(.large), threads: 1))
        let fiveByFive = try [Float](repeating: 0, count: 25).withUnsafeBufferPointer {
            try PackedConv2DWeights(hwio: $0, kernel: Size2D(5, 5), inputChannelsPerGroup: 1, outputChannels: 1)
        }
        XCTAssertThrowsError(try WinogradWeights(fiveByFive))
    }
}
