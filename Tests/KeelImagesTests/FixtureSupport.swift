import Foundation
import XCTest

/// Fixtures written by tools/gen_image_fixtures.py: images, the pixels Pillow decodes from them,
/// and resized/preprocessed references from Pillow and NumPy.
enum Fixtures {
    struct Manifest: Decodable {
        struct Decoded: Decodable {
            let file: String
            let width: Int
            let height: Int
            let tolerance: Int
            let note: String
        }
        struct Resized: Decodable {
            let name: String
            let width: Int
            let height: Int
        }
        let decoded: [Decoded]
        let resize_source: String
        let resized: [Resized]
    }

    static var directory: URL {
        Bundle.module.resourceURL!.appendingPathComponent("Fixtures")
    }

    static func path(_ name: String) -> String {
        directory.appendingPathComponent(name).path
    }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(name)))
    }

    static func floats(_ name: String) throws -> [Float] {
        let data = try bytes(name)
        return stride(from: 0, to: data.count, by: 4).map { offset in
            Float(bitPattern: UInt32(data[offset]) | UInt32(data[offset + 1]) << 8
                  | UInt32(data[offset + 2]) << 16 | UInt32(data[offset + 3]) << 24)
        }
    }

    static func manifest() throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(bytes("manifest.json")))
    }
}

/// Fails with the first differing index, so a mismatch names the pixel and channel.
func assertClose(_ actual: [Float], _ expected: [Float], tolerance: Float, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "\(what): element count", file: file, line: line)
    for index in 0..<min(actual.count, expected.count) {
        let scale = max(1, abs(expected[index]))
        if !(abs(actual[index] - expected[index]) <= tolerance * scale) {
            XCTFail("\(what): element \(index) is \(actual[index]), expected \(expected[index])", file: file, line: line)
            return
        }
    }
}
