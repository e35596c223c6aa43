import Foundation
import KeelIR
@testable import KeelONNX
import XCTest

/// Paths of the fixtures written by tools/gen_onnx_fixtures.py and the facts it recorded.
enum Fixtures {
    static var folder: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    }

    static func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    /// expected.json: per model, what the generator wrote.
    static func expected(_ model: String) throws -> [String: Any] {
        let data = try Data(contentsOf: folder.appendingPathComponent("expected.json"))
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try XCTUnwrap(root[model] as? [String: Any], "no expected facts for \(model)")
    }

    /// The shared ONNX conformance data: a `shared/onnx-conformance` folder beside the
    /// repository (or any folder above this file), nil when absent.
    static var conformanceFolder: URL? {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("shared/onnx-conformance")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("manifest.tsv").path) {
                return candidate
            }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }
}

/// A small deterministic generator (SplitMix64) so the fuzz test replays identically.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}

/// The ONNXError `body` throws; records a failure when it succeeds or throws anything else.
func onnxError(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> ONNXError? {
    do {
        try body()
        XCTFail("expected an ONNXError", file: file, line: line)
    } catch let error as ONNXError {
        return error
    } catch {
        XCTFail("expected an ONNXError, got \(error)", file: file, line: line)
    }
    return nil
}

/// One line per node: name = op(inputs) attributes, for assertion messages.
func describe(_ graph: Graph) -> String {
    graph.nodes.map { "\($0.name) = \($0.op.rawValue)(\($0.inputs.joined(separator: ", "))) \($0.attributes)" }
        .joined(separator: "\n")
}
