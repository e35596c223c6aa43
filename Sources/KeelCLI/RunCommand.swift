import ArgumentParser
import Foundation
import Keel

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a model on .npy inputs or image files; write outputs as .npy or print the top classes.",
        discussion: """
        Without --output, each output is printed: the top 5 classes of a [N,classes] output, the shape \
        and min/mean/max of any other.
        """)

    @Argument(help: modelFileHelp)
    var file: String

    @Option(name: .long, help: ArgumentHelp("An input tensor: x.npy, or name=x.npy for a model with several inputs.", valueName: "file"))
    var input: [String] = []

    @Option(name: .long, help: ArgumentHelp("An image (PNG or JPEG), preprocessed as the model's input declares; repeat for a batch.", valueName: "file"))
    var image: [String] = []

    @Option(name: .long, help: ArgumentHelp("Where to write the output; a model with several outputs writes <stem>.<output>.npy.", valueName: "file"))
    var output: String?

    @Option(name: .long, help: "Print the k highest-scoring classes of each item of every [N,classes] output (with names when the output declares labels).")
    var top: Int?

    @Option(name: .long, help: ArgumentHelp("Image preprocessing instead of the one the input declares (required when it declares none, as ONNX models): \(ImagePreset.names.joined(separator: ", ")).", valueName: "preset"))
    var preprocess: String?

    @Flag(name: .customLong("check-finite"), help: "Fail (exit 1, nothing written) when an output holds NaN or infinity; without it a note says so.")
    var checkFinite = false

    @Flag(help: "Print the results as one JSON object: {outputs: [{name, shape, file, min, mean, max, top: [[{index, label, score}]]}]}.")
    var json = false

    @OptionGroup var options: CompileOptions

    func validate() throws {
        if options.explain && input.isEmpty && image.isEmpty { return }
        guard input.isEmpty != image.isEmpty else { throw ValidationError("give --input .npy files or --image files (not both)") }
        if let top, top < 1 { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            try options.explainWeightsIfAsked(file, toStandardError: json)
            if input.isEmpty && image.isEmpty { return }
            var pipeline = try options.pipeline(file)
            pipeline.preparedBatch = image.isEmpty ? batchOfInputs(input) ?? 1 : image.count
            pipeline.inputShapes = options.paths.inputShapes(runningOn: input)
            let (model, report) = try pipeline.compile()
            noteSeeded(report)
            let classifiers = model.graph.outputs.filter { model.graph.type(of: $0.value)?.shape.rank == 2 }
            if top != nil, classifiers.isEmpty {
                let shapes = model.graph.outputs.map { "'\($0.name)' is \(model.graph.type(of: $0.value)?.description ?? "?")" }
                throw ValidationError("--top needs an output of shape [N,classes], but \(shapes.joined(separator: ", ")); "
                                      + "write it with --output instead")
            }
            let inputs: [String: Tensor]
            if image.isEmpty {
                inputs = try readInputs(input, for: model)
            } else {
                let feeder = try ImageFeeder(graph: model.graph, preset: preprocess)
                try model.prepare(bindings: feeder.bindings(count: image.count))
                inputs = [feeder.inputName: try feeder.tensor(rows: try image.map(feeder.values(forFile:)))]
            }
            let bindings = try model.bind(inputs)
            let outputs = try model.run(inputs)
            try reportNonFinite(outputs, model: model, inputs: inputs, failing: checkFinite)
            let memory = try model.memoryReport(bindings: bindings)
            note("planned activation memory \(megabytes(memory.plannedBytes)) (separate buffers would take \(megabytes(memory.naiveBytes)))")
            var results: [OutputResult] = []
            let paths = output.map { Dictionary(uniqueKeysWithValues: outputPaths(model.outputNames, output: $0)) } ?? [:]
            for graphOutput in model.graph.outputs {
                guard let tensor = outputs[graphOutput.name] else { continue }
                var result = OutputResult(name: graphOutput.name, tensor: tensor)
                result.file = paths[graphOutput.name]
                if (output == nil || top != nil), tensor.shape.count == 2 {
                    result.top = try tensor.topK(top ?? 5, labels: try labels(of: graphOutput, in: model.graph))
                } else if top != nil {
                    note("'\(graphOutput.name)' is \(Shape(known: tensor.shape)), not [N,classes]: no top classes for it")
                }
                results.append(result)
            }
            // Written once every result is known to be printable, all together: a failure leaves none of them.
            if output != nil {
                let transaction = OutputTransaction()
                for result in results {
                    if let path = result.file, let tensor = outputs[result.name] { try transaction.stage(NpyFile.encode(tensor), to: path) }
                }
                try transaction.commit()
            }
            if json {
                print(try jsonText(RunResult(outputs: results)))
            } else {
                for result in results { printResult(result) }
            }
        }
    }

    private func printResult(_ result: OutputResult) {
        if let file = result.file { print("\(result.name): \(Shape(known: result.shape)) -> \(file)") }
        if let top = result.top {
            for (row, classes) in top.enumerated() {
                print("\(result.name) for \(FileListText.line(for: itemName(row, of: top.count))):")
                for (rank, ranked) in classes.enumerated() {
                    print("  \(rank + 1). \(FileListText.line(for: ranked.label))  " + String(format: "%.4f", ranked.score))
                }
            }
        } else if result.file == nil {
            print("\(result.name): \(Shape(known: result.shape)) min " + String(format: "%.4g mean %.4g max %.4g", result.min, result.mean, result.max)
                  + " (write it with --output)")
        }
    }

    /// What row `row` of a batch of `rows` came from: its image, or its .npy file and index.
    private func itemName(_ row: Int, of rows: Int) -> String {
        if !image.isEmpty { return row < image.count ? image[row] : "item \(row)" }
        let file = input.first.map { inputArgument($0).path } ?? "input"
        return rows == 1 ? file : "\(file)[\(row)]"
    }

    /// The output's class names (checked: see `OutputLabels`); nil when it declares none.
    private func labels(of output: GraphOutput, in graph: Graph) throws -> [String]? {
        try OutputLabels.load(output, of: graph, modelFolder: OutputLabels.modelFolder(of: file), confinement: options.paths.confinement)
    }

    private func outputPaths(_ names: [String], output: String) -> [(String, String)] {
        guard names.count > 1 else { return names.map { ($0, output) } }
        return names.map { ($0, "\(OutputNaming.stem(output)).\($0).npy") }
    }
}

/// One output of `keel run`, as printed and as `--json` gives it.
struct OutputResult: Encodable {
    var name: String
    var shape: [Int]
    var file: String?
    var min: Float
    var mean: Float
    var max: Float
    /// Per item of a [N,classes] output: its best classes.
    var top: [[RankedClass]]?

    init(name: String, tensor: Tensor) {
        self.name = name
        shape = tensor.shape
        min = tensor.values.min() ?? 0
        max = tensor.values.max() ?? 0
        mean = tensor.values.isEmpty ? 0 : Float(tensor.values.reduce(0.0) { $0 + Double($1) } / Double(tensor.values.count))
    }
}

struct RunResult: Encodable {
    var outputs: [OutputResult]
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
        let (name, path) = inputArgument(argument)
        if let name {
            result[name] = try NpyFile.read(path: path)
        } else if model.inputNames.count == 1, let only = model.inputNames.first {
            result[only] = try NpyFile.read(path: path)
        } else {
            throw ValidationError("the model has inputs \(model.inputNames.joined(separator: ", ")): name each as --input name=file.npy")
        }
    }
    return result
}

/// An --input argument: `name=file.npy`, or a file alone (a file whose own name has a "=" included).
func inputArgument(_ argument: String) -> (name: String?, path: String) {
    guard let equals = argument.firstIndex(of: "="), !FileManager.default.fileExists(atPath: argument) else { return (nil, argument) }
    return (String(argument[..<equals]), String(argument[argument.index(after: equals)...]))
}

/// The leading extent of the first --input file, read from its header: the batch the model will
/// run, which its weights are prepared for. nil when it cannot be read (reading the inputs then
/// says why).
func batchOfInputs(_ input: [String]) -> Int? {
    guard let first = input.first, let extent = (try? NpyFile.readHeader(path: inputArgument(first).path))?.shape.first
    else { return nil }
    return extent >= 1 ? extent : nil
}
