import KeelKernels
import XCTest
@testable import KeelRuntime

/// Layers that read an image's few channels run bf16 too under `--precision bf16` (their input
/// split in two bf16 terms, so pixel values keep about 16 bits), on the im2col form.
final class LayerChoiceTests: XCTestCase {
    func testPatchEmbeddingAndRGBStemRunIm2colInBF16WithASplitInput() throws {
        guard BF16Convolution.isAvailable else { throw XCTSkip("this CPU has neither AMX-BF16 nor AVX512_BF16") }
        let patches = Conv2DGeometry(batch: 1, input: Size2D(224, 224), inputChannels: 3, outputChannels: 768,
                                     kernel: Size2D(16, 16), stride: Size2D(16, 16))
        let stem = Conv2DGeometry(batch: 1, input: Size2D(230, 230), inputChannels: 3, outputChannels: 64,
                                  kernel: Size2D(7, 7), stride: Size2D(2, 2))
        for geometry in [patches, stem] {
            let choice = try ConvolutionChoice.choose(geometry, precision: .bf16, hasResidual: false, storedOnlyInBF16: false)
            XCTAssertEqual(choice.kernel.precision, .bf16)
            XCTAssertEqual(choice.kernel.algorithm, "im2col")
            XCTAssertEqual(choice.form, .bf16)
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
}
