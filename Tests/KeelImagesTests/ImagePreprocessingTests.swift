import KeelIR
import KeelImages
import XCTest

final class ImagePreprocessingTests: XCTestCase {
    /// Against Pillow's own BILINEAR resize of float ("F" mode) channels: down, up, mixed, same size.
    func testResizeMatchesPillowBilinear() throws {
        let manifest = try Fixtures.manifest()
        let source = try Image(contentsOfFile: Fixtures.path(manifest.resize_source))
        XCTAssertEqual(manifest.resized.count, 4)
        for case_ in manifest.resized {
            let resized = source.resampled(width: case_.width, height: case_.height)
            assertClose(resized, try Fixtures.floats(case_.name + ".f32"), tolerance: 1e-6, case_.name)
        }
    }

    /// Pillow's RGB (8-bit) resize uses the same filter with fixed-point weights and rounding:
    /// our unrounded values stay within one grey level of it.
    func testResizeAgreesWithPillowEightBitResizeWithinRounding() throws {
        let manifest = try Fixtures.manifest()
        let source = try Image(contentsOfFile: Fixtures.path(manifest.resize_source))
        for case_ in manifest.resized {
            let resized = source.resampled(width: case_.width, height: case_.height)
            let rounded = try Fixtures.bytes(case_.name + ".rgb")
            let worst = zip(resized, rounded).map { abs($0 - Float($1)) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, 1.0, case_.name)
        }
    }

    /// keras.applications.vgg16.preprocess_input (caffe mode) on the Pillow-resized pixels.
    func testKerasVGG16PresetMatchesKeras() throws {
        let image = try Image(contentsOfFile: Fixtures.path("resize_source.png"))
        let preprocessing = ImagePreprocessing(preset: .kerasVGG16, height: 32, width: 24, layout: .nhwc)
        XCTAssertEqual(preprocessing.imageShape, [32, 24, 3])
        assertClose(preprocessing.tensor(for: image), try Fixtures.floats("keras_vgg16_nhwc.f32"),
                    tolerance: 1e-5, "keras_vgg16")
    }

    /// torchvision ToTensor + Normalize(ImageNet mean/std), channels first.
    func testTorchPresetMatchesTorchvision() throws {
        let image = try Image(contentsOfFile: Fixtures.path("resize_source.png"))
        let preprocessing = ImagePreprocessing(preset: .torch, height: 32, width: 24, layout: .nchw)
        XCTAssertEqual(preprocessing.imageShape, [3, 32, 24])
        assertClose(preprocessing.tensor(for: image), try Fixtures.floats("torch_nchw.f32"),
                    tolerance: 1e-5, "torch")
    }

    /// Raw keeps 0...255 RGB; NCHW holds the same numbers as NHWC, transposed.
    func testRawPresetAndLayouts() throws {
        let image = try Image(contentsOfFile: Fixtures.path("resize_source.png"))
        let resized = try Fixtures.floats("resize_24x32.f32")
        let nhwc = ImagePreprocessing(preset: .raw, height: 32, width: 24).tensor(for: image)
        assertClose(nhwc, resized, tolerance: 1e-6, "raw nhwc")
        let nchw = ImagePreprocessing(preset: .raw, height: 32, width: 24, layout: .nchw).tensor(for: image)
        let plane = 32 * 24
        for pixel in [0, 5, 100, plane - 1] {
            for channel in 0..<3 {
                XCTAssertEqual(nchw[channel * plane + pixel], nhwc[pixel * 3 + channel])
            }
        }
    }

    func testBatchStacksImagesInOrder() throws {
        let first = try Image(contentsOfFile: Fixtures.path("resize_source.png"))
        let second = try Image(contentsOfFile: Fixtures.path("rgb.png"))
        let preprocessing = ImagePreprocessing(preset: .torch, height: 32, width: 24, layout: .nchw)
        let batch = preprocessing.batch([first, second])
        XCTAssertEqual(preprocessing.batchShape(count: 2), [2, 3, 32, 24])
        XCTAssertEqual(batch.count, 2 * 3 * 32 * 24)
        XCTAssertEqual(Array(batch[0..<(3 * 32 * 24)]), preprocessing.tensor(for: first))
        XCTAssertEqual(Array(batch[(3 * 32 * 24)...]), preprocessing.tensor(for: second))
    }

    func testPresetNames() throws {
        XCTAssertEqual(try ImagePreset(name: "keras_vgg16"), .kerasVGG16)
        XCTAssertEqual(try ImagePreset(name: "torch"), .torch)
        XCTAssertEqual(try ImagePreset(name: "none"), .raw)
        XCTAssertEqual(try ImagePreset(name: "raw"), .raw)
        XCTAssertThrowsError(try ImagePreset(name: "caffe")) { error in
            XCTAssertEqual("\(error)", "unknown preprocess preset 'caffe' (known: keras_vgg16, torch, raw, none)")
        }
    }

    func testPreprocessingFromGraphInput() throws {
        let location = SourceLocation(file: "vgg.keel", line: 2, column: 1)
        let nhwc = GraphInput(name: "input_1", type: TensorType(.float32, ["N", 224, 224, 3]),
                              location: location, preprocess: "keras_vgg16")
        XCTAssertEqual(try ImagePreprocessing(input: nhwc),
                       ImagePreprocessing(preset: .kerasVGG16, height: 224, width: 224, layout: .nhwc))
        XCTAssertEqual("\(try ImagePreprocessing(input: nhwc))", "keras_vgg16, bilinear resize to 224×224, NHWC")
        let nchw = GraphInput(name: "x", type: TensorType(.float32, ["N", 3, 160, 192]),
                              layout: .nchw, preprocess: "torch")
        XCTAssertEqual(try ImagePreprocessing(input: nchw),
                       ImagePreprocessing(preset: .torch, height: 160, width: 192, layout: .nchw))

        var misspelt = nhwc
        misspelt.preprocess = "keras_vgg"
        XCTAssertThrowsError(try ImagePreprocessing(input: misspelt)) { error in
            XCTAssertEqual("\(error)", "vgg.keel:2:1: error: unknown preprocess preset 'keras_vgg' on input 'input_1' (known: keras_vgg16, torch, raw, none)")
        }
        let flat = GraphInput(name: "features", type: TensorType(.float32, ["N", 512]))
        XCTAssertThrowsError(try ImagePreprocessing(input: flat)) { error in
            XCTAssertEqual("\(error)", "input 'features' cannot take images: its shape [N,512] has rank 2, not 4 (N,H,W,C)")
        }
        let grey = GraphInput(name: "g", type: TensorType(.float32, ["N", 28, 28, 1]))
        XCTAssertThrowsError(try ImagePreprocessing(input: grey)) { error in
            XCTAssertEqual("\(error)", "input 'g' cannot take images: its shape [N,28,28,1] has 1 channels where RGB images give 3")
        }
        let open = GraphInput(name: "o", type: TensorType(.float32, ["N", "H", "W", 3]))
        XCTAssertThrowsError(try ImagePreprocessing(input: open)) { error in
            XCTAssertEqual("\(error)", "input 'o' cannot take images: its height and width in [N,H,W,3] must be fixed positive sizes to resize images to")
        }
    }
}
