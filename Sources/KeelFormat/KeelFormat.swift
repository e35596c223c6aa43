import Foundation
import KeelIR

/// Loads a .keel file and everything it includes, and translates it to an IR graph with every
/// value's type inferred. Throws a `Diagnostic` (`file:line:col: error: …`) on any problem.
/// Included files must lie in the model's folder tree or a folder `confinement` allows.
public func loadKeelGraph(path: String, confinement: PathConfinement = PathConfinement(),
                          inputShapes: InputShapes = InputShapes()) throws -> Graph {
    try parseKeelGraph(source: try readKeelFile(path), path: path, confinement: confinement, inputShapes: inputShapes)
}

/// Translates .keel source to an IR graph. `path` names the source in locations and anchors
/// relative `include` paths, which are read from disk. `inputShapes` fixes symbolic input
/// dimensions (a free height and width) before any layer's shape is worked out.
public func parseKeelGraph(source: String, path: String, confinement: PathConfinement = PathConfinement(),
                           inputShapes: InputShapes = InputShapes()) throws -> Graph {
    let file = try Parser.parse(source: source, path: path)
    let modelFolder = PathConfinement.folder(of: path)
    let model = try Expander.expand(file) { included in
        try readKeelFile(try confinement.check(included, inside: modelFolder))
    }
    return try GraphTranslator.translate(model, inputShapes: inputShapes)
}

/// The text of a file, or a Diagnostic naming it. Only regular files are read.
func readKeelFile(_ path: String) throws -> String {
    let file: MappedFile
    do {
        file = try MappedFile(path: path)
    } catch let error as FileError {
        throw Diagnostic("cannot read '\(path)': \(error.reason)")
    }
    guard let text = String(validating: file.bytes, as: UTF8.self) else {
        throw Diagnostic("'\(path)' is not UTF-8 text")
    }
    return text
}
