import KeelKernels
import XCTest
@testable import KeelRuntime

/// Layers that read an image's few channels stay fp32 under `--precision bf16`, whichever algorithm
/// runs them: bf16 would round each pixel value to 8 bits.
final class LayerChoiceTests: XCTestCase {
    func testPatchEmbeddingRunsIm2colInFP32UnderBF16() throws {
        let patches = Conv2DGeometry(batch: 1, input: Size2D(224, 224), inputChannels: 3, outputChannels: 768,
                                     kernel: Size2D(16, 16), stride: Size2D(16, 16))
        let choice = try ConvolutionChoice.choose(patches, precision: .bf16, hasResidual: false, storedOnlyInBF16: false)
        XCTAssertEqual(choice.algorithm, .im2colGEMM)
        XCTAssertEqual(choice.kernel.precision, .fp32)
        XCTAssertEqual(choice.form, .panels)
    }

    func testWideLayerRunsInBF16WhereAvailable() throws {
        let wide = Conv2DGeometry(batch: 1, input: Size2D(14, 14), inputChannels: 64, outputChannels: 64,
                                  kernel: Size2D(3, 3), stride: Size2D(2, 2))
        let choice = try ConvolutionChoice.choose(wide, precision: .bf16, hasResidual: false, storedOnlyInBF16: false)
        XCTAssertEqual(choice.kernel.precision, BF16Convolution.isAvailable ? .bf16 : .fp32)
    }
}
