import Foundation
import Keel

/// The weight-binding fixtures (`Tests/KeelTests/Fixtures/weights`, written by
/// `tools/gen_vgg16_onnx.py --mini`: one small VGG-like network exported tf2onnx style and
/// PyTorch style, with ONNX Runtime's outputs) and a scratch folder for edited copies of its
/// graph, shared by the tests of the Keel API and of the `keel` command.
public final class WeightBindingFixtures {
    /// The fixtures' folder from the repository root, as the `keel` command run there names it.
    public static let relativeFolder = "Tests/KeelTests/Fixtures/weights/"
    public static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    public static let folder = repository.appendingPathComponent(relativeFolder)
    public static let graph = folder.appendingPathComponent("mini_vgg.keel").path

    private let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("keel-weights-\(UUID().uuidString)")

    public init() {
        try? FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    /// Removes the scratch folder (call from `tearDown`).
    public func removeScratch() { try? FileManager.default.removeItem(at: scratch) }

    /// A path in the scratch folder.
    public func path(_ name: String) -> String { scratch.appendingPathComponent(name).path }

    /// A fixture .npy file.
    public func tensor(_ name: String) throws -> Tensor {
        try NpyFile.read(path: Self.folder.appendingPathComponent(name).path)
    }

    /// max|a-b| / max|b|: the error relative to the output's scale.
    public static func relativeError(_ actual: Tensor, _ expected: Tensor) -> Float {
        let scale = expected.values.map(abs).max() ?? 0
        let error = zip(actual.values, expected.values).map { abs($0 - $1) }.max() ?? .infinity
        return error / max(scale, .leastNormalMagnitude)
    }

    public struct MissingText: Error, CustomStringConvertible {
        public var text: String
        public var description: String { "the fixture graph has no '\(text)' to replace" }
    }

    /// The fixture graph with one edit (and `output logits` reading `output` when given),
    /// written to the scratch folder; returns its path.
    public func editedGraph(replacing old: String, with new: String, output: String?) throws -> String {
        let text = try String(contentsOfFile: Self.graph, encoding: .utf8)
        guard text.contains(old) else { throw MissingText(text: old) }
        var edited = text.replacingOccurrences(of: old, with: new)
        if let output { edited = edited.replacingOccurrences(of: "output logits = dense_1", with: "output logits = \(output)") }
        let path = path("edited-\(UUID().uuidString.prefix(8)).keel")
        try edited.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
