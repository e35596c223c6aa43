import Foundation
@_exported import KeelIR
import KeelFormat
import KeelONNX
import KeelPasses
import KeelRuntime

/// Errors about model files before any front end has read them.
public struct ModelFileError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

/// Loads a model from a `.keel` graph or an `.onnx` file and infers every shape, so what comes
/// back is checked: a wrong model fails here, never at run time.
public enum ModelLoader {
    /// Files the model names (includes, external data) must lie in its folder tree or a folder
    /// `confinement` allows. `inputShapes` fixes input dimensions the file leaves symbolic (an
    /// ONNX export's free height and width) before any shape is inferred.
    public static func load(path: String, confinement: PathConfinement = PathConfinement(),
                            inputShapes: InputShapes = InputShapes()) throws -> Graph {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelFileError(path: path, reason: "no such file")
        }
        guard !isDirectory.boolValue else { throw ModelFileError(path: path, reason: "is a folder, not a model file") }
        let graph: Graph
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "keel":
            graph = try loadKeelGraph(path: path, confinement: confinement, inputShapes: inputShapes)
        case "onnx":
            graph = try importONNXGraph(path: path, confinement: confinement, inputShapes: inputShapes)
        case "keelc":
            graph = try fixing(try CompiledArtifact.read(path: path).graph, inputShapes, path: path)
        default:
            throw ModelFileError(path: path, reason: "unknown model type: expected a .keel graph, an .onnx model or a compiled .keelc")
        }
        return try infer(graph)
    }

    /// `graph` with the input symbols `inputShapes` fixes replaced; its errors name the file.
    public static func fixing(_ graph: Graph, _ inputShapes: InputShapes, path: String) throws -> Graph {
        do {
            return try graph.fixingInputs(inputShapes)
        } catch let problem as InputShapeError {
            throw ModelFileError(path: path, reason: problem.description)
        }
    }

    /// Shape inference then the verifier: the check every loaded graph goes through.
    public static func infer(_ graph: Graph) throws -> Graph {
        let inferred = try ShapeInference().run(graph).graph
        // Inside `ShapeInference.reusingResults` a result is known verified; elsewhere, check it.
        if !ShapeInference.isLastResult(inferred) { try verify(inferred) }
        return inferred
    }
}
