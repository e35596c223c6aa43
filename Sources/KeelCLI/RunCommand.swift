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
    var output: String

    @Option(name: .long, help: "Threads for GEMM and Keel's own parallel loops.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, help: "Fill parameters without weights from Keras's default initialisers with this seed.")
    var seed: UInt64 = 0

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard !input.isEmpty else { throw ValidationError("give at least one --input file") }
    }

    func run() throws {
        try reportingErrors {
            var graph = try ModelLoader.load(path: file)
            let (seededGraph, filled) = try WeightBinder.bind(graph, from: .seeded(seed))
            graph = seededGraph
            if filled > 0 {
                note("\(filled) parameter tensors use seeded-random weights (--seed \(seed)); outputs are not meaningful predictions")
            }
            let model = try CompiledModel(graph: graph, context: ExecutionContext(threads: threads))
            let inputs = try readInputs(for: model)
            let bindings = try model.bind(inputs)
            let outputs = try model.run(inputs)
            let memory = try model.memoryReport(bindings: bindings)
            note("planned activation memory \(megabytes(memory.plannedBytes)) (separate buffers would take \(megabytes(memory.naiveBytes)))")
            for (name, path) in outputPaths(model.outputNames) {
                guard let tensor = outputs[name] else { continue }
                try NpyFile.write(tensor, to: path)
                print("\(name): \(Shape(known: tensor.shape)) -> \(path)")
            }
        }
    }

    private func readInputs(for model: CompiledModel) throws -> [String: Tensor] {
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

    private func outputPaths(_ names: [String]) -> [(String, String)] {
        guard names.count > 1 else { return names.map { ($0, output) } }
        let stem = output.hasSuffix(".npy") ? String(output.dropLast(4)) : output
        return names.map { ($0, "\(stem).\($0).npy") }
    }
}

func megabytes(_ bytes: Int) -> String {
    String(format: "%.1f MB", Double(bytes) / 1_048_576)
}
