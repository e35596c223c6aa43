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
