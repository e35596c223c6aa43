import ArgumentParser
import Foundation
import Keel

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a model on .npy inputs or image files; write outputs as .npy or print the top classes.")

    @Argument(help: "A .keel graph or an .onnx model.")
    var file: String

    @Option(name: .long, help: ArgumentHelp("An input tensor: x.npy, or name=x.npy for a model with several inputs.", valueName: "file"))
    var input: [String] = []

    @Option(name: .long, help: ArgumentHelp("An image (PNG or JPEG), preprocessed as the model's input declares; repeat for a batch.", valueName: "file"))
    var image: [String] = []

    @Option(name: .long, help: ArgumentHelp("Where to write the output; a model with several outputs writes <stem>.<output>.npy.", valueName: "file"))
    var output: String?

    @Option(name: .long, help: "Print the k highest-scoring classes of each image (with names when the output declares labels).")
    var top: Int?

    @Option(name: .long, help: ArgumentHelp("Image preprocessing instead of the one the input declares: \(ImagePreset.names.joined(separator: ", ")).", valueName: "preset"))
    var preprocess: String?

    @OptionGroup var options: CompileOptions

    func validate() throws {
        if options.explain && input.isEmpty && image.isEmpty { return }
        guard input.isEmpty != image.isEmpty else { throw ValidationError("give --input .npy files or --image files (not both)") }
        guard output != nil || top != nil || !image.isEmpty else { throw ValidationError("give --output to write the outputs") }
        if let top, top < 1 { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            try options.explainWeightsIfAsked(file)
            if input.isEmpty && image.isEmpty { return }
            let (model, report) = try options.pipeline(file).compile()
            noteSeeded(report)
            let inputs: [String: Tensor]
            if image.isEmpty {
                inputs = try readInputs(input, for: model)
            } else {
                let feeder = try ImageFeeder(graph: model.graph, preset: preprocess)
                inputs = [feeder.inputName: try feeder.tensor(for: try image.map(feeder.decode))]
            }
            let bindings = try model.bind(inputs)
            let outputs = try model.run(inputs)
            let memory = try model.memoryReport(bindings: bindings)
            note("planned activation memory \(megabytes(memory.plannedBytes)) (separate buffers would take \(megabytes(memory.naiveBytes)))")
            if let output {
                // Every output is written before any appears: a failure leaves none of them.
                let transaction = OutputTransaction()
                var written: [String] = []
                for (name, path) in outputPaths(model.outputNames, output: output) {
                    guard let tensor = outputs[name] else { continue }
                    try transaction.stage(NpyFile.encode(tensor), to: path)
                    written.append("\(name): \(Shape(known: tensor.shape)) -> \(path)")
                }
                try transaction.commit()
                written.forEach { print($0) }
            }
            if output == nil || top != nil {
                try printTopClasses(outputs, graph: model.graph, count: top ?? 5)
            }
        }
    }

    /// For each output of shape [batch, classes]: the k best classes of each item, by name when
    /// the output declares a labels file.
    private func printTopClasses(_ outputs: [String: Tensor], graph: Graph, count: Int) throws {
        let sources = image.isEmpty ? input : image
        for output in graph.outputs {
            guard let tensor = outputs[output.name], tensor.shape.count == 2 else { continue }
            let classes = tensor.shape[1]
            var names: [String] = []
            if let labels = output.labels {
                guard let text = try? String(contentsOfFile: labels, encoding: .utf8) else {
                    throw ModelFileError(path: labels, reason: "cannot read the labels file of output '\(output.name)'")
                }
                names = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            }
            for row in 0..<tensor.shape[0] {
                let scores = tensor.values[(row * classes)..<((row + 1) * classes)]
                let best = scores.indices.sorted { scores[$0] > scores[$1] }.prefix(count)
                let source = row < sources.count ? sources[row] : "item \(row)"
                print("\(output.name) for \(source):")
                for (rank, index) in best.enumerated() {
                    let classIndex = index - row * classes
                    let label = classIndex < names.count && !names[classIndex].isEmpty ? names[classIndex] : "class \(classIndex)"
                    print("  \(rank + 1). \(label)  " + String(format: "%.4f", scores[index]))
                }
            }
        }
    }

    private func outputPaths(_ names: [String], output: String) -> [(String, String)] {
        guard names.count > 1 else { return names.map { ($0, output) } }
        return names.map { ($0, "\(OutputNaming.stem(output)).\($0).npy") }
    }
}

/// The note a model's run owes its user: seeded-random weights, for a source model and for a
/// .keelc compiled from one alike.
func noteSeeded(_ report: ModelPipeline.Report) {
    if report.seededParameters > 0 {
        let seed = report.seed.map { " (--seed \($0))" } ?? ""
        let compiled = report.provenance.map { " when \($0.source) was compiled" } ?? ""
        note("\(report.seededParameters) parameter tensors use seeded-random weights\(seed)\(compiled); outputs are not meaningful predictions")
    }
}

func megabytes(_ bytes: Int) -> String {
    String(format: "%.1f MB", Double(bytes) / 1_048_576)
}

/// Reads `x.npy` (a model with one input) or `name=x.npy` arguments into named tensors.
func readInputs(_ input: [String], for model: CompiledModel) throws -> [String: Tensor] {
    var result: [String: Tensor] = [:]
    for argument in input {
        if let equals = argument.firstIndex(of: "="), !FileManager.default.fileExists(atPath: argument) {
            result[String(argument[..<equals])] = try NpyFile.read(path: String(argument[argument.index(after: equals)...]))
        } else if model.inputNames.count == 1, let only = model.inputNames.first {
            result[only] = try NpyFile.read(path: argument)
        } else {
            throw ValidationError("the model has inputs \(model.inputNames.joined(separator: ", ")): name each as --input name=file.npy")
        }
    }
    return result
}
