import ArgumentParser
import Foundation
import Keel

struct CompileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compile",
        abstract: "Optimise a model and print its final IR, or write it as a .keelc that starts in milliseconds.")

    @Argument(help: "A .keel graph or an .onnx model.")
    var file: String

    @OptionGroup var options: CompileOptions

    @Option(name: .shortAndLong, help: ArgumentHelp("Write the compiled model (graph and weights) to this .keelc file.", valueName: "file"))
    var output: String?

    @Flag(help: "Print the IR after every pass, with its one-line statistic.")
    var printIRAfterAll = false

    @Flag(help: "Print the final graph as JSON: nodes with op, inputs, outputs, shapes and attributes.")
    var json = false

    @Flag(help: "Name the tensors where the frozen part of the model ends (feature-extraction cut points).")
    var showFrozen = false

    func run() throws {
        try reportingErrors {
            try options.explainWeightsIfAsked(file)
            let pipeline = try options.pipeline(file)
            let (graph, prepared, report) = try pipeline.optimized { pass, statistic, graph in
                guard printIRAfterAll else { return }
                print("// after \(pass): \(statistic)")
                print(printIR(graph))
            }
            noteSeeded(report)
            for line in report.passLog { FileHandle.standardError.write(Data((line + "\n").utf8)) }
            if options.explain {
                print(report.explanations.isEmpty ? "no rewrite was rejected" : report.explanations.joined(separator: "\n"))
            }
            if showFrozen {
                let analysis = FreezeAnalysis(graph)
                print("frozen boundary: " + (analysis.boundary.isEmpty ? "(none)" : analysis.boundary.joined(separator: ", ")))
            }
            if let output {
                // Filters are prepared now, once, and stored that way: runs of the file skip it.
                let model = try CompiledModel(graph: graph, prepared: prepared, context: ExecutionContext(threads: options.threads))
                let filters = try model.preparedFilters()
                let provenance = try pipeline.provenance(of: model.graph, report: report)
                try CompiledArtifact.write(model.graph, prepared: filters, provenance: provenance, to: output)
                print("\(file) -> \(output) (\(graph.nodes.count) nodes, \(filters.count) prepared filters, "
                      + "format version \(CompiledArtifact.formatVersion); \(provenance.summary))")
            } else if json {
                print(compiledGraphJSON(graph))
            } else if !printIRAfterAll && !options.explain && !showFrozen {
                print(printIR(graph))
            }
        }
    }
}
