import ArgumentParser
import Keel

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Parse a model, infer every shape and print each output's type.")

    @Argument(help: "A .keel graph or an .onnx model.")
    var file: String

    @OptionGroup var paths: ModelPathOptions

    func run() throws {
        try reportingErrors {
            let graph = try ModelLoader.load(path: file, confinement: paths.confinement)
            print("\(file): ok (\(graph.nodes.count) layers)")
            for output in graph.outputs {
                let type = graph.type(of: output.value).map(\.description) ?? "?"
                print("  \(output.name): \(type)")
            }
        }
    }
}
