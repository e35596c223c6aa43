import Foundation
import KeelImages
import XCTest

/// Bad files are refused with one line naming the file, never a crash or a grey-padded image.
final class ImageErrorTests: XCTestCase {
    private func message(loading name: String, limits: ImageLimits = .standard) -> String? {
        do {
            _ = try Image(contentsOfFile: Fixtures.path(name), limits: limits)
            return nil
        } catch let error as ImageError {
            let text = error.description
            XCTAssertFalse(text.contains("\n"), "\(name): error spans lines: \(text)")
            XCTAssertTrue(text.hasPrefix(Fixtures.path(name) + ": "), "\(name): error does not start with the path: \(text)")
            return String(text.dropFirst(Fixtures.path(name).count + 2))
        } catch {
            XCTFail("\(name): unexpected error type \(type(of: error)): \(error)")
            return nil
        }
    }

    func testTruncatedJPEGIsRefused() {
        XCTAssertEqual(message(loading: "truncated.jpg"), "not a valid JPEG image: the file ends early (truncated)")
    }

    func testTruncatedPNGIsRefused() {
        XCTAssertEqual(message(loading: "truncated.png"), "not a valid PNG image: the file ends early (truncated)")
        XCTAssertEqual(message(loading: "header_only.png"), "not a valid PNG image: the file ends early (truncated)")
    }

    func testCMYKJPEGIsRefused() {
        XCTAssertEqual(message(loading: "cmyk.jpg"), "unsupported JPEG image: its colour space is CMYK; convert it to RGB")
    }

    /// Hundreds of progressive scans each cost a pass over the image: a cheap denial of service.
    func testJPEGWithTooManyScansIsRefused() {
        XCTAssertEqual(message(loading: "many_scans.jpg"), "not a valid JPEG image: more than 500 progressive scans")
    }

    func testTextNamedPNGIsRefused() {
        XCTAssertEqual(message(loading: "text.png"),
                       "not a PNG or JPEG image: it looks like text (starts \"hello, this is n\")")
    }

    func testEmptyFileIsRefused() {
        XCTAssertEqual(message(loading: "empty.png"), "the file is empty")
    }

    func testMissingFileAndDirectoryAreRefused() {
        XCTAssertEqual(message(loading: "no-such-photo.jpg"), "no such file")
        let directory = Fixtures.directory.path
        XCTAssertThrowsError(try Image(contentsOfFile: directory)) { error in
            XCTAssertEqual("\(error)", "\(directory): cannot read the file: it is a directory")
        }
    }

    /// The header declares 30000×30000 RGB (2.7 GB): refused from the header, before allocating.
    func testHugePNGHeaderIsRefusedQuickly() {
        let start = Date()
        XCTAssertEqual(message(loading: "huge_header.png"),
                       "the PNG header declares 30000×30000 pixels, over the limit of 16384 per side and 100,000,000 pixels in all")
        XCTAssertLessThan(Date().timeIntervalSince(start), 0.5)
    }

    func testHugeJPEGHeaderIsRefusedQuickly() {
        let start = Date()
        XCTAssertEqual(message(loading: "huge_header.jpg"),
                       "the JPEG header declares 30000×30000 pixels, over the limit of 16384 per side and 100,000,000 pixels in all")
        XCTAssertLessThan(Date().timeIntervalSince(start), 0.5)
    }

    func testLimitsApplyPerSideAndInTotal() throws {
        let perSide = ImageLimits(maxSide: 36)
        XCTAssertNotNil(message(loading: "rgb.png", limits: perSide))  // 37 wide
        XCTAssertNotNil(message(loading: "progressive.jpg", limits: ImageLimits(maxPixels: 56 * 40 - 1)))
        XCTAssertEqual(try Image(contentsOfFile: Fixtures.path("progressive.jpg"),
                                 limits: ImageLimits(maxPixels: 56 * 40)).width, 56)
        XCTAssertEqual(message(loading: "rgb.png", limits: ImageLimits(maxFileBytes: 10)).map { $0.hasPrefix("the file is ") }, true)
    }

    /// Every prefix of a valid file is refused or decoded, never a crash.
    func testEveryTruncationOfSmallFilesIsHandled() throws {
        for name in ["rgb.png", "palette.png", "progressive.jpg", "odd_size_422.jpg"] {
            let bytes = try Fixtures.bytes(name)
            for length in Swift.stride(from: 0, to: bytes.count, by: max(1, bytes.count / 97)) {
                do {
                    _ = try Image(data: Data(bytes.prefix(length)), name: name)
                } catch is ImageError {
                    continue
                }
            }
        }
    }

    /// Random byte flips inside a valid file: errors or images, never a crash.
    func testCorruptedBytesAreHandled() throws {
        var generator = SplitMix(seed: 11)
        for name in ["rgb.png", "baseline_420.jpg"] {
            let original = try Fixtures.bytes(name)
            for _ in 0..<60 {
                var bytes = original
                for _ in 0..<4 {
                    let index = 8 + Int(generator.next() % UInt64(bytes.count - 8))
                    bytes[index] = UInt8(truncatingIfNeeded: generator.next())
                }
                _ = try? Image(data: Data(bytes), name: name)
            }
        }
    }
}

/// A tiny deterministic generator, so corruption tests do the same thing on every run.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
