import Foundation
import KeelIR

/// Loads a .keel file and everything it includes, and translates it to an IR graph with every
/// value's type inferred. Throws a `Diagnostic` (`file:line:col: error: …`) on any problem.
public func loadKeelGraph(path: String) throws -> Graph {
    try parseKeelGraph(source: try readKeelFile(path), path: path)
}

/// Translates .keel source to an IR graph. `path` names the source in locations and anchors
/// relative `include` paths, which are read from disk.
public func parseKeelGraph(source: String, path: String) throws -> Graph {
    let file = try Parser.parse(source: source, path: path)
    let model = try Expander.expand(file, readFile: readKeelFile)
    return try GraphTranslator.translate(model)
}

/// The text of a file, or a Diagnostic naming it.
func readKeelFile(_ path: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw Diagnostic("cannot read '\(path)'")
    }
    guard let text = String(data: data, encoding: .utf8) else {
        throw Diagnostic("'\(path)' is not UTF-8 text")
    }
    return text
}
