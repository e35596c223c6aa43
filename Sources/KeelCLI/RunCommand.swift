import ArgumentParser
import Foundation
import Keel

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a model on .npy inputs and write its outputs as .npy files.")

    @Argument(help: "A .keel graph or an .onnx model.")
    var file: String

    @Option(name: .long, help: ArgumentHelp("An input tensor: x.npy, or name=x.npy for a model with several inputs.", valueName: "file"))
    var input: [String] = []

    @Option(name: .long, help: ArgumentHelp("Where to write the output; a model with several outputs writes <stem>.<output>.npy.", valueName: "file"))
    var output: String?

    @Option(name: .long, help: "Threads for GEMM and Keel's own parallel loops.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, help: "Fill parameters without weights from Keras's default initialisers with this seed.")
    var seed: UInt64 = 0

    @OptionGroup var weights: WeightOptions

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        if weights.explain && input.isEmpty { return }
        guard !input.isEmpty else { throw ValidationError("give at least one --input file") }
        guard output != nil else { throw ValidationError("give an --output file") }
    }

    func run() throws {
        try reportingErrors {
            try weights.explainIfAsked(file)
            guard let output, !input.isEmpty else { return }
            let (model, report) = try ModelPipeline(path: file, weights: weights.source(seed: seed), threads: threads).compile()
            noteSeeded(report, seed: seed)
            let inputs = try readInputs(input, for: model)
            let bindings = try model.bind(inputs)
            let outputs = try model.run(inputs)
            let memory = try model.memoryReport(bindings: bindings)
            note("planned activation memory \(megabytes(memory.plannedBytes)) (separate buffers would take \(megabytes(memory.naiveBytes)))")
            for (name, path) in outputPaths(model.outputNames, output: output) {
                guard let tensor = outputs[name] else { continue }
                try NpyFile.write(tensor, to: path)
                print("\(name): \(Shape(known: tensor.shape)) -> \(path)")
            }
        }
    }

    private func outputPaths(_ names: [String], output: String) -> [(String, String)] {
        guard names.count > 1 else { return names.map { ($0, output) } }
        let stem = output.hasSuffix(".npy") ? String(output.dropLast(4)) : output
        return names.map { ($0, "\(stem).\($0).npy") }
    }
}

func noteSeeded(_ report: ModelPipeline.Report, seed: UInt64) {
    if report.seededParameters > 0 {
        note("\(report.seededParameters) parameter tensors use seeded-random weights (--seed \(seed)); outputs are not meaningful predictions")
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
