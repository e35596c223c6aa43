import Foundation
import KeelImages
import XCTest

final class ImageDecodingTests: XCTestCase {
    /// Every PNG equals Pillow's `convert("RGB")` exactly; every JPEG within ±1 per channel.
    func testDecodedPixelsMatchPillow() throws {
        let manifest = try Fixtures.manifest()
        XCTAssertGreaterThanOrEqual(manifest.decoded.count, 14)
        for entry in manifest.decoded {
            let image = try Image(contentsOfFile: Fixtures.path(entry.file))
            XCTAssertEqual(image.width, entry.width, entry.file)
            XCTAssertEqual(image.height, entry.height, entry.file)
            let expected = try Fixtures.bytes(entry.file + ".rgb")
            XCTAssertEqual(image.pixels.count, expected.count, entry.file)
            let worst = zip(image.pixels, expected).map { abs(Int($0) - Int($1)) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, entry.tolerance, "\(entry.file) (\(entry.note)): largest channel difference")
        }
    }

    func testPixelSubscriptReadsRowMajorRGB() throws {
        let image = try Image(contentsOfFile: Fixtures.path("rgb.png"))
        let expected = try Fixtures.bytes("rgb.png.rgb")
        let offset = (5 * image.width + 7) * 3
        let pixel = try XCTUnwrap(image[7, 5])
        XCTAssertEqual([pixel.red, pixel.green, pixel.blue], Array(expected[offset..<offset + 3]))
        XCTAssertNil(image[image.width, 0])
        XCTAssertNil(image[0, -1])
    }

    func testDecodingFromMemoryUsesTheGivenName() throws {
        let data = Data(try Fixtures.bytes("progressive.jpg"))
        let image = try Image(data: data, name: "camera upload")
        XCTAssertEqual(image.width, 56)
        XCTAssertThrowsError(try Image(data: Data("GIF89a....".utf8), name: "upload 3")) { error in
            XCTAssertEqual("\(error)", "upload 3: it is a GIF image; only PNG and JPEG are supported")
        }
    }

    func testFormatComesFromTheBytesNotTheName() throws {
        XCTAssertEqual(ImageFormat.detect(try Fixtures.bytes("jpeg_named.png")), .jpeg)
        XCTAssertEqual(ImageFormat.detect(try Fixtures.bytes("rgb.png")), .png)
        XCTAssertNil(ImageFormat.detect(try Fixtures.bytes("text.png")))
    }

    func testInitFromPixelsChecksTheCount() {
        XCTAssertNotNil(Image(width: 2, height: 1, pixels: [1, 2, 3, 4, 5, 6]))
        XCTAssertNil(Image(width: 2, height: 1, pixels: [1, 2, 3]))
        XCTAssertNil(Image(width: 0, height: 0, pixels: []))
    }
}

/// The photos bundled in samples/ decode to the sizes and pixels Pillow reports for them.
final class SampleImageTests: XCTestCase {
    private var samples: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("samples")
    }

    func testSamplesDecode() throws {
        // Sizes and the centre pixel from Pillow's `Image.open(f).convert("RGB")`.
        let expected: [(String, Int, Int, [UInt8], Int)] = [
            ("astronaut.jpg", 256, 256, [17, 16, 22], 1),
            ("camera_grey.png", 256, 256, [12, 12, 12], 0),
            ("chelsea.jpg", 256, 170, [183, 140, 108], 1),
            ("chelsea_rgba.png", 160, 106, [185, 144, 116], 0),
            ("coffee.jpg", 256, 171, [254, 245, 236], 1),
            ("coffee_palette.png", 160, 107, [249, 243, 236], 0),
            ("rocket.jpg", 256, 171, [134, 121, 105], 1),
        ]
        for (name, width, height, centre, tolerance) in expected {
            let image = try Image(contentsOfFile: samples.appendingPathComponent(name).path)
            XCTAssertEqual(image.width, width, name)
            XCTAssertEqual(image.height, height, name)
            let pixel = try XCTUnwrap(image[width / 2, height / 2])
            for (actual, reference) in zip([pixel.red, pixel.green, pixel.blue], centre) {
                XCTAssertLessThanOrEqual(abs(Int(actual) - Int(reference)), tolerance, name)
            }
        }
    }

    /// A full-size 224×224 keras_vgg16 tensor from a bundled photo: the shape VGG16 expects.
    func testSampleToVGG16Input() throws {
        let image = try Image(contentsOfFile: samples.appendingPathComponent("chelsea.jpg").path)
        let preprocessing = ImagePreprocessing(preset: .kerasVGG16, height: 224, width: 224)
        let values = preprocessing.batch([image])
        XCTAssertEqual(preprocessing.batchShape(count: 1), [1, 224, 224, 3])
        XCTAssertEqual(values.count, 224 * 224 * 3)
        XCTAssertTrue(values.allSatisfy { $0 >= -123.68 && $0 <= 255 - 103.939 })
    }
}
