/// Both Winograd tiles against a plain direct convolution in double on awkward sizes (odd maps,
/// 1×1 and 2×2 outputs, channels off every vector width, batch > 1, asymmetric padding, both
/// layouts, one and two threads, every SIMD level and the portable Swift transforms), and the
/// rule that picks none, F(2×2) or F(4×4) per layer.
import KeelKernels
import XCTest

final class WinogradSmallTileTests: XCTestCase {
    private func geometry(_ batch: Int, _ height: Int, _ width: Int, inputs: Int, outputs: Int,
                          padding: Padding2D = Padding2D(top: 1, left: 1, bottom: 1, right: 1),
                          layout: ActivationLayout = .nhwc) -> Conv2DGeometry {
        Conv2DGeometry(batch: batch, input: Size2D(height, width), inputChannels: inputs, outputChannels: outputs,
                       kernel: Size2D(3, 3), padding: padding, layout: layout)
    }

    func testBothTilesMatchDirectConvolution() throws {
        let shapes: [(batch: Int, height: Int, width: Int, inputs: Int, outputs: Int, padding: Padding2D?)] = [
            (1, 7, 9, 19, 21, nil),       // odd map: ragged last tile row and column for both tiles
            (3, 5, 6, 17, 33, nil),       // batch 3, outputs across two panels
            (1, 1, 1, 18, 8, nil),        // 1×1 output
            (2, 4, 4, 16, 20, .zero),     // 2×2 output, no padding
            (1, 2, 2, 24, 40, nil),       // 2×2 output, padded
            (1, 10, 8, 9, 16, Padding2D(top: 0, left: 2, bottom: 1, right: 0)),
        ]
        for (index, shape) in shapes.enumerated() {
            for layout in [ActivationLayout.nhwc, .nchw] {
                let geometry = shape.padding.map {
                    self.geometry(shape.batch, shape.height, shape.width, inputs: shape.inputs, outputs: shape.outputs,
                                  padding: $0, layout: layout)
                } ?? self.geometry(shape.batch, shape.height, shape.width, inputs: shape.inputs, outputs: shape.outputs,
                                   layout: layout)
                let seed = UInt64(500 + 10 * index)
                let input = seededValues(geometry.inputElementCount, seed: seed)
                let hwio = seededValues(9 * shape.inputs * shape.outputs, seed: seed + 1)
                let bias = seededValues(shape.outputs, seed: seed + 2)
                let convolved = directConvolution(input, hwio: hwio, bias: bias, geometry)
                let scale = max(1, convolved.map { abs($0) }.max() ?? 1)
                let expected = convolved.map { max($0, 0) }
                let weights = try packedWeights(hwio, geometry)
                try forEachCapabilitySet { level in
                    for tile in WinogradTile.allCases {
                        for threads in [1, 2] {
                            let actual = try convolve(input, weights, bias: bias, activation: .relu, geometry,
                                                      algorithm: .winograd(tile), threads: threads)
                            let error = zip(actual, expected).map { abs($0 - $1) }.max() ?? .infinity
                            XCTAssertEqual(actual.count, expected.count)
                            // F(2×2)'s transforms only add and halve: closer to the direct sum than F(4×4)'s.
                            XCTAssertLessThanOrEqual(error, (tile == .small ? 2e-6 : 1e-5) * scale,
                                                     "shape \(index) \(layout) \(tile) \(level) threads \(threads)")
                        }
                    }
                }
            }
        }
    }

    /// Activations the C output pass does not fuse run in Swift on the staged small tile.
    func testSmallTileAppliesOtherActivations() throws {
        let geometry = geometry(2, 5, 7, inputs: 16, outputs: 24, layout: .nchw)
        let input = seededValues(geometry.inputElementCount, seed: 601)
        let hwio = seededValues(9 * 16 * 24, seed: 602)
        let bias = seededValues(24, seed: 603)
        let expected = directConvolution(input, hwio: hwio, bias: bias, geometry).map { 1 / (1 + exp(-$0)) }
        let weights = try packedWeights(hwio, geometry)
        try forEachCapabilitySet { level in
            let actual = try convolve(input, weights, bias: bias, activation: .sigmoid, geometry,
                                      algorithm: .winograd(.small), threads: 2)
            assertClose(actual, expected, "sigmoid \(level)", tolerance: 1e-5)
        }
    }

    /// Activations with a vector form other than ReLU run on each tile's rows after the C tile pass,
    /// on both tiles and layouts; without a residual that is the only pass over the output.
    func testBothTilesApplySwishAndSigmoidPerTile() throws {
        for layout in [ActivationLayout.nhwc, .nchw] {
            let geometry = geometry(2, 9, 7, inputs: 24, outputs: 40, layout: layout)
            let input = seededValues(geometry.inputElementCount, seed: 611)
            let hwio = seededValues(9 * 24 * 40, seed: 612)
            let bias = seededValues(40, seed: 613)
            let convolved = directConvolution(input, hwio: hwio, bias: bias, geometry)
            let scale = max(1, convolved.map { abs($0) }.max() ?? 1)
            let weights = try packedWeights(hwio, geometry)
            for (activation, function) in [(UnaryOperation.swish, { (x: Float) in x / (1 + exp(-x)) }),
                                           (.sigmoid, { (x: Float) in 1 / (1 + exp(-x)) })] {
                let expected = convolved.map(function)
                try forEachCapabilitySet { level in
                    for tile in WinogradTile.allCases {
                        let actual = try convolve(input, weights, bias: bias, activation: activation, geometry,
                                                  algorithm: .winograd(tile), threads: 2)
                        // Within Winograd's error on the sum (see above), which the activations do not grow.
                        let error = zip(actual, expected).map { abs($0 - $1) }.max() ?? .infinity
                        XCTAssertEqual(actual.count, expected.count)
                        XCTAssertLessThanOrEqual(error, (tile == .small ? 2e-6 : 1e-5) * scale,
                                                 "\(activation) \(layout) \(tile) \(level)")
                    }
                }
            }
        }
    }

    private final class ValuesOwner {}

    /// Weights of one tile refuse to run as the other's.
    func testWeightsKnowTheirTile() throws {
        let packed = try [Float](repeating: 0.1, count: 9 * 16 * 16).withUnsafeBufferPointer {
            try PackedConv2DWeights(hwio: $0, kernel: Size2D(3, 3), inputChannelsPerGroup: 16, outputChannels: 16)
        }
        let small = try WinogradWeights(packed, tile: .small)
        XCTAssertEqual(small.dims, [16, 16, 16])
        XCTAssertEqual(try WinogradWeights(packed).dims, [36, 16, 16])
        let values = small.withUnsafeValues { Array($0) }
        XCTAssertThrowsError(try values.withUnsafeBufferPointer {
            try WinogradWeights(borrowing: $0, owner: ValuesOwner(), inputChannels: 16, outputChannels: 16, tile: .large,
                                   splitHalves: small.splitHalves)
        })
        let borrowed = try values.withUnsafeBufferPointer {
            try WinogradWeights(borrowing: $0, owner: ValuesOwner(), inputChannels: 16, outputChannels: 16, tile: .small,
                                   splitHalves: small.splitHalves)
        }
        XCTAssertEqual(borrowed.tile, .small)
    }

    /// The rule, at the shapes it was measured on: a tile pays when it saves enough multiplies
    /// (more when its filter would grow by over 16 MiB, and none past 64 MiB), and of those that
    /// pay the one whose multiplies plus filter streaming cost less wins. Without an x86 SIMD level
    /// (whose kernels were not measured again) a tile must save 720 multiplies per filter element.
    func testTileChoiceWeighsMultipliesFilterMemoryAndStreaming() {
        func choice(batch: Int, size: Int, inputs: Int = 512, outputs: Int = 512) -> WinogradTile? {
            Conv2D.defaultAlgorithm(for: geometry(batch, size, size, inputs: inputs, outputs: outputs)).winogradTile
        }
        // 14×14 at batch 1: both pay for 256 channels, the small tile costs less (1200 against 1512:
        // measured 1.25 against 1.45 ms); at 512 the large filter (+28 MB) is over the budget.
        XCTAssertEqual(choice(batch: 1, size: 14, inputs: 256, outputs: 256), .small)
        XCTAssertEqual(choice(batch: 1, size: 14, inputs: 384, outputs: 384), .small)
        XCTAssertEqual(choice(batch: 1, size: 14), .small)
        XCTAssertEqual(choice(batch: 2, size: 14), .small)
        // 7×7 and 8×8 at batch 1 save too little with either tile (185/297, 320/432).
        defer { CPUCapabilities.restoreDetected() }
        CPUCapabilities.restrict(to: [])
        XCTAssertNil(choice(batch: 1, size: 7))
        XCTAssertNil(choice(batch: 1, size: 8, inputs: 448, outputs: 384))
        XCTAssertNil(choice(batch: 2, size: 8, inputs: 448, outputs: 384))
        XCTAssertNil(choice(batch: 1, size: 10, inputs: 256, outputs: 256))
        XCTAssertEqual(choice(batch: 4, size: 7, inputs: 256, outputs: 256), .small)
        XCTAssertEqual(choice(batch: 4, size: 7), .small)
        // More tiles over the batch or the map: the large tile's fewer multiplies win.
        XCTAssertEqual(choice(batch: 8, size: 7), .large)
        XCTAssertEqual(choice(batch: 8, size: 8, inputs: 448, outputs: 384), .large)
        XCTAssertEqual(choice(batch: 8, size: 14), .large)
        XCTAssertEqual(choice(batch: 1, size: 28), .large)
        XCTAssertEqual(choice(batch: 1, size: 224, inputs: 64, outputs: 64), .large)
        // Past the cap the tile is not taken, whatever it saves: 1024→1024 would grow by 113 MB on
        // the large tile; the small one (29 MB) where it pays, at 14×14 but not 7×7. 768→768
        // grows by 64 MB on the large tile, just under the cap.
        XCTAssertNil(choice(batch: 8, size: 7, inputs: 1024, outputs: 1024))
        XCTAssertEqual(choice(batch: 8, size: 14, inputs: 1024, outputs: 1024), .small)
        XCTAssertEqual(choice(batch: 8, size: 7, inputs: 768, outputs: 768), .large)
        // Too few channels for the transforms to pay, whatever the size.
        XCTAssertNil(choice(batch: 8, size: 14, inputs: 8, outputs: 512))
        XCTAssertNil(choice(batch: 1, size: 56, inputs: 64, outputs: 15))
    }

    /// With AVX2 or AVX-512 in use a tile pays from 310 multiplies saved: 8×8 (320 on the small
    /// tile) and 10×10 (500) layers at batch 1 take it, 7×7 ones (185 small, 297 large) stay on im2col.
    func testTileChoiceWithSIMDPaysFromASmallerSaving() {
        let levels = CPUCapabilities.everyPathPresent.filter { $0.contains(.avx2) || $0.contains(.avx512) }
        if levels.isEmpty { print("Winograd tile choice: the x86 SIMD rule skipped: this CPU has neither AVX2 nor AVX-512") }
        defer { CPUCapabilities.restoreDetected() }
        for level in levels {
            CPUCapabilities.restrict(to: level)
            assertSIMDRule()
        }
    }

    private func assertSIMDRule() {
        func choice(batch: Int, size: Int, inputs: Int = 512, outputs: Int = 512) -> WinogradTile? {
            Conv2D.defaultAlgorithm(for: geometry(batch, size, size, inputs: inputs, outputs: outputs)).winogradTile
        }
        XCTAssertNil(choice(batch: 1, size: 7))
        XCTAssertNil(choice(batch: 1, size: 7, inputs: 128, outputs: 32))
        // The large tile's filter (+18.6 MB) is over the budget; the small one saves 320.
        XCTAssertEqual(choice(batch: 1, size: 8, inputs: 448, outputs: 384), .small)
        XCTAssertEqual(choice(batch: 1, size: 10, inputs: 256, outputs: 256), .small)
        XCTAssertEqual(choice(batch: 8, size: 5), .small)
        // What paid before still does, with the same tile.
        XCTAssertEqual(choice(batch: 1, size: 14, inputs: 256, outputs: 256), .small)
        XCTAssertEqual(choice(batch: 8, size: 7), .large)
        XCTAssertNil(choice(batch: 8, size: 7, inputs: 1024, outputs: 1024))
        XCTAssertNil(choice(batch: 8, size: 14, inputs: 8, outputs: 512))
    }
}
