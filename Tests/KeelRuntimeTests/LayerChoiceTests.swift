import KeelKernels
import XCTest
@testable import KeelRuntime

/// Layers that read an image's few channels run bf16 too under `--precision bf16` on AMX (their
/// input split in two bf16 terms, so pixel values keep about 16 bits), on the im2col form; on
/// AVX512_BF16 alone the split's twice as many products make fp32 the faster choice.
final class LayerChoiceTests: XCTestCase {
    func testPatchEmbeddingAndRGBStemRunIm2colInBF16WithASplitInput() throws {
        guard BF16Convolution.isAvailable else { throw XCTSkip("this CPU has neither AMX-BF16 nor AVX512_BF16") }
        let amx = CPUCapabilities.inUse.contains(.amxBF16)
        let patches = Conv2DGeometry(batch: 1, input: Size2D(224, 224), inputChannels: 3, outputChannels: 768,
                                     kernel: Size2D(16, 16), stride: Size2D(16, 16))
        let stem = Conv2DGeometry(batch: 1, input: Size2D(230, 230), inputChannels: 3, outputChannels: 64,
                                  kernel: Size2D(7, 7), stride: Size2D(2, 2))
        for geometry in [patches, stem] {
            let choice = try ConvolutionChoice.choose(geometry, precision: .bf16, hasResidual: false, storedOnlyInBF16: false)
            if amx {
                XCTAssertEqual(choice.kernel.precision, .bf16)
                XCTAssertEqual(choice.kernel.algorithm, "im2col")
                XCTAssertEqual(choice.form, .bf16)
            } else {
                XCTAssertEqual(choice, try ConvolutionChoice.choose(geometry, precision: .fp32, hasResidual: false,
                                                                    storedOnlyInBF16: false))
            }
            XCTAssertTrue(BF16Convolution.splitsInput(inputChannels: geometry.inputChannels))
            let taps = geometry.kernel.height * geometry.kernel.width
            XCTAssertEqual(BF16Convolution.filterDepth(for: geometry), 2 * taps * geometry.inputChannels)
        }
    }

    func testWideLayerRunsInBF16WhereAvailable() throws {
        let wide = Conv2DGeometry(batch: 1, input: Size2D(14, 14), inputChannels: 64, outputChannels: 64,
                                  kernel: Size2D(3, 3), stride: Size2D(2, 2))
        let choice = try ConvolutionChoice.choose(wide, precision: .bf16, hasResidual: false, storedOnlyInBF16: false)
        XCTAssertEqual(choice.kernel.precision, BF16Convolution.isAvailable ? .bf16 : .fp32)
    }

    /// Where the bf16 products run on AVX512_BF16 (twice fp32 FMA's rate, not AMX's many times),
    /// a layer fp32 runs with Winograd F(4×4) (four times fewer products) keeps fp32, one that
    /// fp32 runs as a GEMM (1×1, strided) runs bf16; a filter held only in bf16 runs bf16.
    func testAVX512BF16KeepsFP32WhereWinogradMultipliesLess() throws {
        try restrictToAVX512BF16()
        defer { CPUCapabilities.restoreDetected() }
        let threeByThree = Conv2DGeometry(batch: 1, input: Size2D(56, 56), inputChannels: 64, outputChannels: 64,
                                          kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1))
        let pointwise = Conv2DGeometry(batch: 1, input: Size2D(56, 56), inputChannels: 64, outputChannels: 256,
                                       kernel: Size2D(1, 1))
        XCTAssertEqual(Conv2D.defaultAlgorithm(for: threeByThree), .winograd(.large))
        let kept = try ConvolutionChoice.choose(threeByThree, precision: .bf16, hasResidual: false, storedOnlyInBF16: false)
        XCTAssertEqual(kept.kernel.precision, .fp32)
        XCTAssertEqual(kept.algorithm, .winograd(.large))
        XCTAssertEqual(try ConvolutionChoice.choose(pointwise, precision: .bf16, hasResidual: false,
                                                    storedOnlyInBF16: false).kernel.precision, .bf16)
        XCTAssertEqual(try ConvolutionChoice.choose(threeByThree, precision: .fp32, hasResidual: false,
                                                    storedOnlyInBF16: true).kernel.precision, .bf16)
    }

    /// On AVX512_BF16 alone, bf16 runs where its vdpbf16ps (one per pair of depths) are fewer than
    /// fp32's FMAs: shallow layers too (MobileNetV2's 16→96 expansion: 8 pairs against 16 depths,
    /// the padding to a 32-deep tile skipped), not a split input (an RGB stem: 147 pairs of its
    /// doubled 294-deep filter against 147 depths). Counted by hand per 16 output columns.
    func testAVX512BF16RunsBF16WhereItDoesFewerProducts() throws {
        try restrictToAVX512BF16()
        defer { CPUCapabilities.restoreDetected() }
        func pointwise(_ inputs: Int, _ outputs: Int) -> Conv2DGeometry {
            Conv2DGeometry(batch: 1, input: Size2D(112, 112), inputChannels: inputs, outputChannels: outputs, kernel: Size2D(1, 1))
        }
        let threeByThree = Conv2DGeometry(batch: 1, input: Size2D(7, 7), inputChannels: 16, outputChannels: 16,
                                          kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1))
        let stem = Conv2DGeometry(batch: 1, input: Size2D(230, 230), inputChannels: 3, outputChannels: 64,
                                  kernel: Size2D(7, 7), stride: Size2D(2, 2))
        let cases: [(Conv2DGeometry, bf16: Int, fp32: Int)] = [
            (pointwise(16, 96), 8 * 6, 16 * 6), (pointwise(32, 16), 16 * 1, 32 * 1), (pointwise(5, 40), 3 * 3, 5 * 3),
            (threeByThree, 72 * 1, 144 * 1), (pointwise(24, 144), 12 * 9, 24 * 9), (stem, 147 * 4, 147 * 4),
        ]
        for (geometry, bf16, fp32) in cases {
            let products = BF16Convolution.vectorProducts(geometry)
            XCTAssertEqual(products.bf16, bf16, "\(geometry)")
            XCTAssertEqual(products.fp32, fp32, "\(geometry)")
            let choice = try ConvolutionChoice.choose(geometry, precision: .bf16, hasResidual: false, storedOnlyInBF16: false)
            XCTAssertEqual(choice.kernel.precision, bf16 < fp32 ? .bf16 : .fp32, "\(geometry)")
        }
    }

    /// fp32-strict never runs Winograd: the 3×3 layer and the 1×7 line that fp32 runs on their
    /// transforms run im2col on panels, and a filter a compiled file holds in a Winograd form
    /// alone is refused by name rather than run another way.
    func testStrictFP32RunsNoWinograd() throws {
        let threeByThree = Conv2DGeometry(batch: 1, input: Size2D(56, 56), inputChannels: 64, outputChannels: 64,
                                          kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1))
        let line = Conv2DGeometry(batch: 1, input: Size2D(17, 17), inputChannels: 192, outputChannels: 192,
                                  kernel: Size2D(1, 7), padding: Padding2D(top: 0, left: 3, bottom: 0, right: 3))
        for geometry in [threeByThree, line] {
            let fast = try ConvolutionChoice.choose(geometry, precision: .fp32, hasResidual: false, storedOnlyInBF16: false)
            let strict = try ConvolutionChoice.choose(geometry, precision: .fp32Strict, hasResidual: false, storedOnlyInBF16: false)
            XCTAssertNotEqual(fast.algorithm, .im2colGEMM, "fp32 should run \(geometry.kernel) on a Winograd form here")
            XCTAssertEqual(strict.algorithm, .im2colGEMM)
            XCTAssertEqual(strict.form, .panels)
        }
        XCTAssertThrowsError(try ConvolutionChoice.choose(threeByThree, precision: .fp32Strict, hasResidual: false,
                                                          storedOnlyInBF16: false, onlyWinogradAlgorithm: .winograd(.large))) {
            XCTAssertTrue("\($0)".contains("compiled for Winograd only"), "\($0)")
        }
    }

    /// The kernels of a CPU with AVX512_BF16 but no AMX; skips where this one lacks them.
    private func restrictToAVX512BF16() throws {
        let capabilities: CPUCapabilities = [.avx2, .avx512, .avx512BF16]
        guard CPUCapabilities.detected.isSuperset(of: capabilities) else { throw XCTSkip("this CPU has no AVX512_BF16") }
        CPUCapabilities.restrict(to: capabilities)
    }
}
