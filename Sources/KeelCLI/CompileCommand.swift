import ArgumentParser
import Foundation
import Keel

struct CompileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compile",
        abstract: "Optimise a model and print its final IR, or write it as a .keelc that starts in milliseconds.")

    @Argument(help: modelFileHelp)
    var file: String

    @OptionGroup var options: CompileOptions

    @Option(name: .shortAndLong, help: ArgumentHelp("Write the compiled model (graph and weights) to this .keelc file.", valueName: "file"))
    var output: String?

    @Flag(help: "Print the IR after every pass, with its one-line statistic.")
    var printIRAfterAll = false

    @Flag(help: "Print one JSON object: the final graph (nodes with op, inputs, outputs, shapes and attributes), and what --explain, --show-frozen, --print-ir-after-all and -o add, as keys of it.")
    var json = false

    @Flag(help: "Name the tensors where the frozen part of the model ends (feature-extraction cut points).")
    var showFrozen = false

    func run() throws {
        try reportingErrors {
            try options.explainWeightsIfAsked(file, toStandardError: json)
            let pipeline = try options.pipeline(file)
            var extras = CompileExtras()
            let (graph, prepared, report) = try pipeline.optimized { pass, statistic, graph in
                guard printIRAfterAll else { return }
                if json {
                    extras.irAfterPass = (extras.irAfterPass ?? []) + [.init(pass: pass, statistic: statistic, ir: printIR(graph))]
                } else {
                    print("// after \(pass): \(statistic)")
                    print(printIR(graph))
                }
            }
            noteSeeded(report)
            if !Notes.quiet {
                for line in report.passLog { FileHandle.standardError.write(Data((line + "\n").utf8)) }
            }
            if options.explain {
                extras.rejectedRewrites = report.explanations
                if !json { print(report.explanations.isEmpty ? "no rewrite was rejected" : report.explanations.joined(separator: "\n")) }
            }
            if showFrozen {
                extras.frozenBoundary = FreezeAnalysis(graph).boundary
                if !json { print("frozen boundary: " + (extras.frozenBoundary?.isEmpty ?? true ? "(none)" : extras.frozenBoundary!.joined(separator: ", "))) }
            }
            if let output {
                // Filters are prepared now, once, and stored that way: runs of the file skip it.
                let model = try CompiledModel(graph: graph, prepared: prepared, context: pipeline.context(prepared: prepared))
                let filters = try model.preparedFilters()
                let provenance = try pipeline.provenance(of: model.graph, report: report)
                try CompiledArtifact.write(model.graph, prepared: filters, provenance: provenance, to: output)
                extras.written = .init(file: output, nodes: graph.nodes.count, prepared_filters: filters.count,
                                       format_version: Int(CompiledArtifact.formatVersion), provenance: provenance.summary)
                if !json {
                    print("\(file) -> \(output) (\(graph.nodes.count) nodes, \(filters.count) prepared filters, "
                          + "format version \(CompiledArtifact.formatVersion); \(provenance.summary))")
                }
            }
            if json {
                // Each node's precision, algorithm and kernel in a batch-1 plan (building it prepares the weights).
                let model = try CompiledModel(graph: graph, prepared: prepared, context: pipeline.context(prepared: prepared))
                var bindings: [String: Int] = [:]
                for input in graph.inputs {
                    for case .symbol(let symbol) in input.type.shape.dims { bindings[symbol] = 1 }
                }
                var kernels: [String: [String: String]] = [:]
                for (node, choice) in try model.kernelChoices(bindings: bindings) {
                    kernels[node] = ["precision": choice.precision.rawValue, "algorithm": choice.algorithm, "kernel": choice.kernel,
                                     "output": choice.output.rawValue]
                }
                print(try jsonText(CompileResult(graph: CompiledGraphDescription(graph, kernels: kernels), extras: extras),
                                   pretty: true))
            } else if output == nil && !printIRAfterAll && !options.explain && !showFrozen {
                print(printIR(graph))
            }
        }
    }
}

/// What `compile --json` adds to the graph's description, each key present only when asked for.
struct CompileExtras: Encodable {
    struct Snapshot: Encodable {
        var pass: String
        var statistic: String
        var ir: String
    }
    struct Written: Encodable {
        var file: String
        var nodes: Int
        var prepared_filters: Int
        var format_version: Int
        /// How the file was made, as `keel compile` prints it.
        var provenance: String
    }
    var irAfterPass: [Snapshot]?
    var rejectedRewrites: [String]?
    var frozenBoundary: [String]?
    var written: Written?

    enum CodingKeys: String, CodingKey {
        case irAfterPass = "ir_after_pass", rejectedRewrites = "rejected_rewrites", frozenBoundary = "frozen_boundary", written
    }
}

/// The graph's own keys (graph, inputs, nodes, outputs) and the extras beside them in one object.
struct CompileResult: Encodable {
    var graph: CompiledGraphDescription
    var extras: CompileExtras

    func encode(to encoder: Encoder) throws {
        try graph.encode(to: encoder)
        try extras.encode(to: encoder)
    }
}
