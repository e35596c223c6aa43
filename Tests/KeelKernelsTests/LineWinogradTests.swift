/// Line Winograd F(4, k) for 1×k and k×1 convolutions, and F(4×4, 5×5) for 5×5 ones, against a plain direct convolution in double
/// on awkward sizes (maps shorter than a tile, ragged last tiles, channels off every vector width,
/// batch > 1, padding across the line and asymmetric padding along it, one and two threads, every
/// SIMD level and the portable transform), and the rule that picks it.
import KeelKernels
import XCTest

final class LineWinogradTests: XCTestCase {
    private func geometry(_ batch: Int, _ height: Int, _ width: Int, inputs: Int, outputs: Int, kernel: Size2D,
                          padding: Padding2D) -> Conv2DGeometry {
        Conv2DGeometry(batch: batch, input: Size2D(height, width), inputChannels: inputs, outputChannels: outputs,
                       kernel: kernel, padding: padding, layout: .nhwc)
    }

    private static func same(_ kernel: Size2D) -> Padding2D {
        Padding2D(top: (kernel.height - 1) / 2, left: (kernel.width - 1) / 2,
                  bottom: (kernel.height - 1) / 2, right: (kernel.width - 1) / 2)
    }

    func testMatchesDirectConvolutionOnAwkwardShapes() throws {
        let shapes: [(batch: Int, height: Int, width: Int, inputs: Int, outputs: Int, kernel: Size2D, padding: Padding2D?)] = [
            (1, 17, 17, 19, 21, Size2D(1, 7), nil),   // Inception's 1×7 on 17×17: a ragged last tile of one pixel
            (3, 9, 5, 17, 33, Size2D(7, 1), nil),     // 7×1, batch 3, outputs across two panels
            (2, 8, 8, 16, 40, Size2D(1, 3), nil),     // 1×3 on 8×8: two whole tiles per line
            (1, 6, 3, 24, 8, Size2D(3, 1), .zero),    // 3×1 valid: four outputs, one tile
            (1, 3, 1, 20, 20, Size2D(3, 1), .zero),   // 3×1 valid on 3×1: a 1×1 output
            (1, 4, 6, 9, 16, Size2D(1, 5), Padding2D(top: 1, left: 2, bottom: 0, right: 1)),  // padding across the line
            (2, 7, 4, 18, 17, Size2D(7, 1), .zero),   // 7×1 valid: one output row
            (1, 2, 2, 32, 32, Size2D(1, 7), nil),     // a line shorter than the filter
            (1, 35, 35, 48, 64, Size2D(5, 5), nil),   // Inception's 5×5: ragged last tiles of three rows and columns
            (2, 6, 7, 17, 33, Size2D(5, 5), nil),     // 5×5, batch 2, tiles cut on both axes, outputs across two panels
            (1, 5, 5, 16, 20, Size2D(5, 5), .zero),   // 5×5 valid: a 1×1 output
            (1, 3, 9, 19, 16, Size2D(5, 5), Padding2D(top: 2, left: 1, bottom: 0, right: 3)),  // asymmetric padding
            (1, 2, 3, 24, 24, Size2D(5, 5), nil),     // a map smaller than the filter
        ]
        for (index, shape) in shapes.enumerated() {
            let geometry = self.geometry(shape.batch, shape.height, shape.width, inputs: shape.inputs,
                                         outputs: shape.outputs, kernel: shape.kernel,
                                         padding: shape.padding ?? Self.same(shape.kernel))
            let taps = shape.kernel.height * shape.kernel.width
            let seed = UInt64(700 + 10 * index)
            let input = seededValues(geometry.inputElementCount, seed: seed)
            let hwio = seededValues(taps * shape.inputs * shape.outputs, seed: seed + 1)
            let bias = seededValues(shape.outputs, seed: seed + 2)
            let convolved = directConvolution(input, hwio: hwio, bias: bias, geometry)
            let scale = max(1, convolved.map { abs($0) }.max() ?? 1)
            let expected = convolved.map { max($0, 0) }
            let weights = try packedWeights(hwio, geometry)
            try forEachCapabilitySet(testing: index == 0 ? "line Winograd" : nil) { level in
                let one = try convolve(input, weights, bias: bias, activation: .relu, geometry,
                                       algorithm: .lineWinograd, threads: 1)
                let two = try convolve(input, weights, bias: bias, activation: .relu, geometry,
                                       algorithm: .lineWinograd, threads: 2)
                let error = zip(one, expected).map { abs($0 - $1) }.max() ?? .infinity
                XCTAssertEqual(one.count, expected.count)
                // F(4, 7)'s ten points (±1/2, ±3/2) round more than F(4, 3)'s six; F(4×4, 5×5) sums 25
                // taps through 64 points.
                XCTAssertLessThanOrEqual(error, (taps == 3 ? 2e-6 : 1e-5) * scale, "shape \(index) \(level)")
                XCTAssertEqual(one, two, "shape \(index) \(level): one and two threads differ")
            }
        }
    }

    /// Enough tiles (2 × 64 × 13) for each of two threads to run its own pipeline when given the
    /// scratch for two; with the one-thread scratch they share blocks instead. Both give the same
    /// bits, close to im2col's.
    func testIndependentPipelinesMatchSharedBlocks() throws {
        let geometry = geometry(2, 64, 52, inputs: 64, outputs: 64, kernel: Size2D(1, 7), padding: Self.same(Size2D(1, 7)))
        let oneThread = Conv2D.scratchSize(for: geometry, algorithm: .lineWinograd)
        let twoThreads = Conv2D.scratchSize(for: geometry, algorithm: .lineWinograd, threads: 2)
        XCTAssertGreaterThan(twoThreads, oneThread)
        let input = seededValues(geometry.inputElementCount, seed: 801)
        let packed = try packedWeights(seededValues(7 * 64 * 64, seed: 802).map { $0 * 0.05 }, geometry)
        let bias = seededValues(64, seed: 803)
        let reference = try convolve(input, packed, bias: bias, activation: .identity, geometry, algorithm: .im2colGEMM,
                                     threads: 1)
        let weights = try LineWinogradWeights(packed)
        let results = try [oneThread, twoThreads].map { scratchSize in
            var scratch = [Float](repeating: .nan, count: scratchSize)
            return try withOutput(geometry.outputElementCount) { output in
                try input.withUnsafeBufferPointer { source in
                    try bias.withUnsafeBufferPointer { bias in
                        try scratch.withUnsafeMutableBufferPointer { scratch in
                            try Conv2D.apply(input: source, weights: weights, bias: bias, output: output,
                                             geometry: geometry, scratch: scratch, context: KernelContext(threads: 2))
                        }
                    }
                }
            }
        }
        XCTAssertEqual(results[0], results[1])
        let scale = max(1, reference.map { abs($0) }.max() ?? 1)
        XCTAssertLessThanOrEqual(zip(results[1], reference).map { abs($0 - $1) }.max() ?? .infinity, 1e-5 * scale)
    }

    /// A residual, or an activation the output transform does not fuse, follows in one pass.
    func testResidualAndOtherActivations() throws {
        let geometry = geometry(2, 5, 9, inputs: 16, outputs: 24, kernel: Size2D(1, 3), padding: Self.same(Size2D(1, 3)))
        let input = seededValues(geometry.inputElementCount, seed: 811)
        let hwio = seededValues(3 * 16 * 24, seed: 812)
        let bias = seededValues(24, seed: 813)
        let residual = seededValues(geometry.outputElementCount, seed: 814)
        let reference = NaiveConvolution(geometry: geometry, hwio: hwio, bias: bias, residual: residual, activation: .sigmoid)
        let expected = reference.run(input)
        let weights = try LineWinogradWeights(try packedWeights(hwio, geometry))
        try forEachCapabilitySet { level in
            var scratch = [Float](repeating: .nan, count: Conv2D.scratchSize(for: geometry, algorithm: .lineWinograd))
            let actual = try withOutput(geometry.outputElementCount) { output in
                try input.withUnsafeBufferPointer { source in
                    try bias.withUnsafeBufferPointer { bias in
                        try residual.withUnsafeBufferPointer { residual in
                            try scratch.withUnsafeMutableBufferPointer { scratch in
                                try Conv2D.apply(input: source, weights: weights, bias: bias, residual: residual,
                                                 activation: .sigmoid, output: output, geometry: geometry,
                                                 scratch: scratch, context: KernelContext(threads: 2))
                            }
                        }
                    }
                }
            }
            assertClose(actual, expected, "residual + sigmoid \(level)", tolerance: 1e-5)
        }
    }

    /// Without a residual, an activation other than ReLU runs on each tile's pixels as they are stored.
    func testSwishPerTile() throws {
        let geometry = geometry(2, 6, 11, inputs: 24, outputs: 40, kernel: Size2D(7, 1), padding: Self.same(Size2D(7, 1)))
        let input = seededValues(geometry.inputElementCount, seed: 815)
        let hwio = seededValues(7 * 24 * 40, seed: 816)
        let bias = seededValues(40, seed: 817)
        let expected = directConvolution(input, hwio: hwio, bias: bias, geometry).map { $0 / (1 + exp(-$0)) }
        let weights = try packedWeights(hwio, geometry)
        try forEachCapabilitySet { level in
            let actual = try convolve(input, weights, bias: bias, activation: .swish, geometry, algorithm: .lineWinograd,
                                      threads: 2)
            let scale = max(1, expected.map { abs($0) }.max() ?? 1)
            XCTAssertEqual(actual.count, expected.count)
            XCTAssertLessThanOrEqual(zip(actual, expected).map { abs($0 - $1) }.max() ?? .infinity, 1e-5 * scale,
                                     "swish \(level)")
        }
    }

    /// ONNX's OIHW filter and Keras's HWIO one give the same transformed bits, for a line and a square.
    func testKernelLayoutsTransformAlike() throws {
        for (inputs, outputs, taps, square, points) in [(19, 37, 7, false, 10), (17, 21, 5, true, 64)] {
            let area = square ? taps * taps : taps
            let hwio = seededValues(area * inputs * outputs, seed: 821)
            var oihw = [Float](repeating: 0, count: hwio.count)
            for tap in 0..<area {
                for input in 0..<inputs {
                    for output in 0..<outputs {
                        oihw[(output * inputs + input) * area + tap] = hwio[(tap * inputs + input) * outputs + output]
                    }
                }
            }
            let fromHWIO = try hwio.withUnsafeBufferPointer {
                try LineWinogradWeights(hwio: $0, taps: taps, square: square, inputChannels: inputs, outputChannels: outputs)
            }
            let fromOIHW = try oihw.withUnsafeBufferPointer {
                try LineWinogradWeights(oihw: $0, taps: taps, square: square, inputChannels: inputs, outputChannels: outputs)
            }
            XCTAssertEqual(fromHWIO.dims, [points, inputs, outputs])
            XCTAssertEqual(fromHWIO.withUnsafeValues(Array.init), fromOIHW.withUnsafeValues(Array.init), "square: \(square)")
        }
    }

    /// Inception's 17×17 1×7 and 7×1 layers pay at batch 1, and so do its 8×8 1×3 and 3×1 ones;
    /// 5×5 ones (a 224² input) only at batch 8, where there are enough tiles to stream the larger
    /// filter for (per layer, one thread, the picks ran 1.6–2.0× faster than im2col at batch 1 and
    /// 1.7–1.8× at batch 8; 8×8 at batch 1 1.4×). Thin layers keep im2col: a 1×7 one broke even
    /// near 32 channels, a 1×3 one near 48–64. Other kernels, strides, layouts and groups stay
    /// where they were.
    func testDispatch() throws {
        defer { CPUCapabilities.restoreDetected() }
        // Without a vector transform (the portable one was 3–6× slower than im2col) every layer keeps im2col.
        CPUCapabilities.restrict(to: [])
        XCTAssertFalse(LineWinograd.hasVectorTransforms)
        for (batch, size, channels, kernel) in [(1, 17, 160, Size2D(1, 7)), (8, 35, 48, Size2D(5, 5)), (1, 8, 384, Size2D(1, 3))] {
            XCTAssertEqual(Conv2D.defaultAlgorithm(for: Conv2DGeometry(
                batch: batch, input: Size2D(size, size), inputChannels: channels, outputChannels: channels, kernel: kernel,
                padding: Self.same(kernel), layout: .nhwc)), .im2colGEMM, "\(kernel) without a vector transform")
        }
        CPUCapabilities.restoreDetected()
        try XCTSkipUnless(LineWinograd.hasVectorTransforms,
                          "this CPU has no vector line transform (AVX2 or AVX-512): every layer keeps im2col, checked above")
        func algorithm(_ batch: Int, _ size: Int, _ channels: Int, _ kernel: Size2D, stride: Int = 1,
                       layout: ActivationLayout = .nhwc, groups: Int = 1) -> Conv2DAlgorithm {
            Conv2D.defaultAlgorithm(for: Conv2DGeometry(
                batch: batch, input: Size2D(size, size), inputChannels: channels, outputChannels: channels,
                kernel: kernel, stride: Size2D(stride, stride), padding: Self.same(kernel), groups: groups, layout: layout))
        }
        XCTAssertEqual(algorithm(1, 17, 160, Size2D(1, 7)), .lineWinograd)
        XCTAssertEqual(algorithm(1, 17, 192, Size2D(7, 1)), .lineWinograd)
        XCTAssertEqual(algorithm(1, 17, 64, Size2D(1, 7)), .lineWinograd)
        XCTAssertEqual(algorithm(1, 17, 32, Size2D(1, 7)), .im2colGEMM)
        XCTAssertEqual(algorithm(1, 35, 128, Size2D(1, 3)), .lineWinograd)
        XCTAssertEqual(algorithm(1, 35, 32, Size2D(1, 3)), .im2colGEMM)
        XCTAssertEqual(algorithm(8, 17, 48, Size2D(1, 3)), .im2colGEMM)
        XCTAssertEqual(algorithm(1, 8, 384, Size2D(1, 3)), .lineWinograd)
        XCTAssertEqual(algorithm(1, 8, 192, Size2D(3, 1)), .lineWinograd)
        XCTAssertEqual(algorithm(1, 5, 384, Size2D(1, 3)), .im2colGEMM)
        XCTAssertEqual(algorithm(8, 5, 384, Size2D(1, 3)), .lineWinograd)
        XCTAssertEqual(algorithm(8, 8, 384, Size2D(3, 1)), .lineWinograd)
        XCTAssertEqual(algorithm(1, 17, 160, Size2D(1, 7), layout: .nchw), .im2colGEMM)
        XCTAssertEqual(algorithm(1, 17, 160, Size2D(1, 7), stride: 2), .im2colGEMM)
        XCTAssertNotEqual(algorithm(1, 17, 160, Size2D(1, 7), groups: 2), .lineWinograd)
        XCTAssertEqual(algorithm(1, 17, 8, Size2D(1, 7)), .im2colGEMM)
        XCTAssertEqual(algorithm(1, 17, 160, Size2D(1, 9)), .im2colGEMM)
        XCTAssertEqual(algorithm(1, 17, 160, Size2D(1, 4)), .im2colGEMM)
        // 5×5: Inception's 35×35 48→64 layers ran 1.3× faster on the square tiles at batch 1 and 2.4×
        // at batch 8; 16 channels are too few for the transforms, an 8×8 map at batch 1 too few tiles.
        XCTAssertEqual(algorithm(1, 35, 48, Size2D(5, 5)), .lineWinograd)
        XCTAssertEqual(algorithm(8, 35, 48, Size2D(5, 5)), .lineWinograd)
        XCTAssertEqual(algorithm(1, 35, 16, Size2D(5, 5)), .im2colGEMM)
        XCTAssertEqual(algorithm(1, 8, 64, Size2D(5, 5)), .im2colGEMM)
        XCTAssertEqual(algorithm(8, 8, 64, Size2D(5, 5)), .lineWinograd)
        XCTAssertEqual(algorithm(1, 35, 48, Size2D(5, 5), stride: 2), .im2colGEMM)
        XCTAssertEqual(algorithm(1, 35, 48, Size2D(5, 5), layout: .nchw), .im2colGEMM)
        XCTAssertEqual(algorithm(1, 35, 64, Size2D(7, 7)), .im2colGEMM)
        XCTAssertEqual(algorithm(1, 35, 64, Size2D(3, 3)), .winograd(.large))
    }

    func testRefusesWhatItCannotRun() throws {
        let geometry = geometry(1, 8, 8, inputs: 16, outputs: 16, kernel: Size2D(1, 7), padding: Self.same(Size2D(1, 7)))
        let input = seededValues(geometry.inputElementCount, seed: 831)
        let bias = [Float](repeating: 0, count: 16)
        // Weights of another filter length.
        let three = Conv2DGeometry(batch: 1, input: Size2D(8, 8), inputChannels: 16, outputChannels: 16,
                                   kernel: Size2D(1, 3), padding: Self.same(Size2D(1, 3)), layout: .nhwc)
        let wrong = try LineWinogradWeights(try packedWeights(seededValues(3 * 16 * 16, seed: 832), three))
        var scratch = [Float](repeating: 0, count: Conv2D.scratchSize(for: geometry, algorithm: .lineWinograd))
        var output = [Float](repeating: 0, count: geometry.outputElementCount)
        XCTAssertThrowsError(try input.withUnsafeBufferPointer { source in
            try scratch.withUnsafeMutableBufferPointer { scratch in
                try output.withUnsafeMutableBufferPointer { output in
                    try Conv2D.apply(input: source, weights: wrong, output: output, geometry: geometry, scratch: scratch)
                }
            }
        }) { XCTAssertTrue("\($0)".contains("do not match the geometry"), "\($0)") }
        // A 1×5 line's weights on a 5×5 layer: the same taps, another span.
        let five = Conv2DGeometry(batch: 1, input: Size2D(8, 8), inputChannels: 16, outputChannels: 16,
                                  kernel: Size2D(5, 5), padding: Self.same(Size2D(5, 5)), layout: .nhwc)
        let line = Conv2DGeometry(batch: 1, input: Size2D(8, 8), inputChannels: 16, outputChannels: 16,
                                  kernel: Size2D(1, 5), padding: Self.same(Size2D(1, 5)), layout: .nhwc)
        let lineWeights = try LineWinogradWeights(try packedWeights(seededValues(5 * 16 * 16, seed: 835), line))
        var fiveScratch = [Float](repeating: 0, count: Conv2D.scratchSize(for: five, algorithm: .lineWinograd))
        XCTAssertThrowsError(try input.withUnsafeBufferPointer { source in
            try fiveScratch.withUnsafeMutableBufferPointer { scratch in
                try output.withUnsafeMutableBufferPointer { output in
                    try Conv2D.apply(input: source, weights: lineWeights, output: output, geometry: five, scratch: scratch)
                }
            }
        }) { XCTAssertTrue("\($0)".contains("do not match the geometry"), "\($0)") }
        // A 3×3 filter has no line transform; NCHW activations are refused by the algorithm.
        let square = try packedWeights(seededValues(9 * 16 * 16, seed: 833),
                                       Conv2DGeometry(batch: 1, input: Size2D(8, 8), inputChannels: 16, outputChannels: 16,
                                                      kernel: Size2D(3, 3), layout: .nhwc))
        XCTAssertThrowsError(try LineWinogradWeights(square)) { XCTAssertTrue("\($0)".contains("1xk or kx1"), "\($0)") }
        let planar = Conv2DGeometry(batch: 1, input: Size2D(8, 8), inputChannels: 16, outputChannels: 16,
                                    kernel: Size2D(1, 7), padding: Self.same(Size2D(1, 7)), layout: .nchw)
        XCTAssertThrowsError(try convolve(input, try packedWeights(seededValues(7 * 16 * 16, seed: 834), planar), bias: bias,
                                          activation: .identity, planar, algorithm: .lineWinograd, threads: 1)) {
            XCTAssertTrue("\($0)".contains("NHWC"), "\($0)")
        }
    }
}
