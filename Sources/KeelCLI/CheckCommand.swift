import ArgumentParser
import Foundation
import Keel

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Parse a model, infer every shape and print each output's type.")

    @Argument(help: modelFileHelp)
    var file: String

    @Flag(help: "Print JSON: {file, layers, inputs: [{name, shape}], outputs: [{name, shape}], notes}.")
    var json = false

    @OptionGroup var terminal: QuietOption

    @OptionGroup var paths: ModelPathOptions

    func run() throws {
        try reportingErrors {
            let graph = try ModelLoader.load(path: file, confinement: paths.confinement, inputShapes: paths.inputShapes)
            try OutputLabels.check(graph, modelFolder: OutputLabels.modelFolder(of: file), confinement: paths.confinement)
            let notes = ModelAdvice.notes(for: graph)
            if json {
                print(try jsonText(CheckResult(file: file, graph: graph, notes: notes), pretty: true))
                return
            }
            print("\(file): ok (\(graph.nodes.count) layers)")
            for output in graph.outputs {
                let type = graph.type(of: output.value).map(\.description) ?? "?"
                print("  \(output.name): \(type)")
            }
            for advice in notes { note(advice.message, at: advice.location) }
        }
    }
}

/// `keel check --json`: shapes as arrays with `null` for a symbolic extent.
struct CheckResult: Encodable {
    struct Value: Encodable {
        var name: String
        var dtype: String?
        var shape: [Int?]?
    }
    var file: String
    var layers: Int
    var inputs: [Value]
    var outputs: [Value]
    var notes: [String]

    init(file: String, graph: Graph, notes: [Diagnostic.Note]) {
        func value(_ name: String, _ type: TensorType?) -> Value {
            Value(name: name, dtype: type?.dtype.rawValue, shape: type?.shape.dims.map(\.value))
        }
        self.file = file
        layers = graph.nodes.count
        inputs = graph.inputs.map { value($0.name, $0.type) }
        outputs = graph.outputs.map { value($0.name, graph.type(of: $0.value)) }
        self.notes = notes.map { ($0.location.map { "\($0): " } ?? "") + $0.message }
    }
}

/// One JSON document, keys sorted so scripts and diffs see a stable order.
func jsonText<T: Encodable>(_ value: T, pretty: Bool = false) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}
