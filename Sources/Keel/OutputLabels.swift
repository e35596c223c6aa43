import Foundation
import KeelIR
import KeelRuntime

/// The class names an output declares (`output probs labels: "labels.txt"`), checked where the
/// model is checked: the file must exist, be a regular file inside the model's folder tree (or a
/// folder the user allowed), and hold exactly one name per class, so a wrong or hostile labels
/// file is an error at `keel check` instead of names silently mixed with "class N".
public enum OutputLabels {
    /// The names for `output` of `graph`, or nil when it declares no labels file. `modelFolder`
    /// is the folder of the model file (for a .keelc, of its source).
    public static func load(_ output: GraphOutput, of graph: Graph, modelFolder: String, allowing allowed: [String] = []) throws -> [String]? {
        guard let labels = output.labels else { return nil }
        let path = try confined(labels, inside: modelFolder, allowing: allowed, for: output)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelFileError(path: labels, reason: "cannot read the labels file of output '\(output.name)'")
        }
        var names = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
        if names.last == "" { names.removeLast() }
        guard let type = graph.type(of: output.value), let classes = type.shape.dims.last?.value, type.shape.rank >= 2 else {
            throw ModelFileError(path: labels, reason: "output '\(output.name)' declares labels but has no class axis")
        }
        guard names.count == classes else {
            throw ModelFileError(path: labels, reason: "\(names.count) class names for the \(classes) classes of output '\(output.name)' \(type.shape); give one name per line")
        }
        return names
    }

    /// Checks every output's labels file (what `keel check` does).
    public static func check(_ graph: Graph, modelFolder: String, allowing allowed: [String] = []) throws {
        for output in graph.outputs { _ = try load(output, of: graph, modelFolder: modelFolder, allowing: allowed) }
    }

    /// The folder labels of the model at `path` are confined to: its own, or for a .keelc its
    /// source's (labels paths are resolved against the source when compiling).
    public static func modelFolder(of path: String) -> String {
        var source = path
        if CompiledArtifact.isArtifact(path: path), let contents = try? CompiledArtifact.read(path: path) {
            source = contents.provenance.source
        }
        return URL(fileURLWithPath: source).deletingLastPathComponent().path
    }

    /// The real path of `labels` when it is a regular file inside `folder` or an allowed folder.
    private static func confined(_ labels: String, inside folder: String, allowing allowed: [String], for output: GraphOutput) throws -> String {
        guard let resolved = realPath(labels) else {
            throw ModelFileError(path: labels, reason: "the labels file of output '\(output.name)' does not exist")
        }
        let roots = ([folder] + allowed).compactMap(realPath)
        guard roots.contains(where: { $0 == "/" || resolved.hasPrefix($0 + "/") }) else {
            throw ModelFileError(path: labels, reason: "the labels file of output '\(output.name)' lies outside the model's folder \(roots.first ?? folder)")
        }
        var info = stat()
        guard stat(resolved, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw ModelFileError(path: labels, reason: "the labels file of output '\(output.name)' is not a regular file")
        }
        return resolved
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
