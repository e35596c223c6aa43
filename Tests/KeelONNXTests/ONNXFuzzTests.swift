import Foundation
@testable import KeelONNX
import XCTest

/// Damaged files either load or throw ONNXError: truncations at random lengths and random bit
/// flips of the fixtures, from a fixed seed so a failure replays.
final class ONNXFuzzTests: XCTestCase {
    func testTruncatedAndBitFlippedModelsNeverCrash() throws {
        var generator = SeededGenerator(seed: 0x6B65_656C)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("keel-onnx-fuzz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("variant.onnx").path
        var loaded = 0, rejected = 0, variants = 0
        for fixture in ["cnn.onnx", "tf2onnx_style.onnx"] {
            let original = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(fixture))))
            for round in 0..<600 {
                var bytes = original
                if round % 2 == 0 {
                    bytes.removeLast(Int.random(in: 1..<bytes.count, using: &generator))
                } else {
                    for _ in 0..<Int.random(in: 1...6, using: &generator) {
                        let index = Int.random(in: 0..<bytes.count, using: &generator)
                        bytes[index] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &generator)
                    }
                }
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                variants += 1
                do {
                    _ = try importONNXGraph(try loadONNXModel(path: path))
                    loaded += 1
                } catch is ONNXError {
                    rejected += 1
                } catch {
                    XCTFail("\(fixture) variant \(round) threw a non-ONNX error: \(error)")
                }
            }
        }
        XCTAssertEqual(variants, 1200)
        XCTAssertEqual(loaded + rejected, variants)
        XCTAssertGreaterThan(rejected, 0)
    }
}
