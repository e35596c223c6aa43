import ArgumentParser
import Foundation
import Keel

struct SummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary",
        abstract: "Print a Keras-style table of layers, output shapes and parameter counts.")

    @Argument(help: modelFileHelp)
    var file: String

    @Flag(help: "Print JSON: {model, layers: [{name, op, output_shape, params, trainable}], total_params, trainable_params, non_trainable_params}; the inputs are the first layers (op \"input\"), as in the table. For a .keelc, also cut_points (the names --at accepts) and not_cuttable (name: why).")
    var json = false

    @OptionGroup var terminal: QuietOption

    @OptionGroup var paths: ModelPathOptions

    func run() throws {
        try reportingErrors {
            var graph: Graph
            var cuts: CompiledCutPoints?
            if CompiledArtifact.isArtifact(path: file) {
                // A .keelc is cut through the table compile recorded: list what --at accepts on it.
                let contents = try CompiledArtifact.read(path: file)
                graph = try ModelLoader.infer(contents.graph)
                cuts = CompiledCutPoints(contents.provenance.cutPoints, in: graph)
            } else {
                graph = try ModelLoader.load(path: file, confinement: paths.confinement, inputShapes: paths.inputShapes)
            }
            let summary = ModelSummary(graph)
            if json {
                print(try summaryJSON(summary, model: graph.name, cutPoints: cuts))
            } else {
                print("Model: \"\(graph.name)\"")
                print(summary)
                if let cuts { print(cuts.description) }
            }
        }
    }
}

/// The layer names `--at` accepts on a .keelc (in the compiled graph's order) and those it refuses.
struct CompiledCutPoints: CustomStringConvertible {
    var accepted: [String]
    var refused: [(name: String, reason: String)]

    init(_ table: [String: ArtifactProvenance.CutPoint], in graph: Graph) {
        var position: [String: Int] = [:]
        for input in graph.inputs { position[input.name] = -1 }
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs where position[output] == nil { position[output] = index }
        }
        accepted = table.compactMap { name, point in point.value.map { (name, position[$0] ?? Int.max) } }
            .sorted { ($0.1, $0.0) < ($1.1, $1.0) }.map(\.0)
        refused = table.compactMap { name, point in point.value == nil ? (name, point.unavailable ?? "optimised away") : nil }
            .sorted { $0.name < $1.name }
    }

    var description: String {
        var lines = ["Cut points (--at on this file): " + (accepted.isEmpty ? "none" : accepted.joined(separator: ", "))]
        if !refused.isEmpty {
            lines.append("Not cuttable here (fused or removed by optimisation; cut the source model instead): "
                         + refused.map(\.name).joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }
}

/// The JSON contract: shapes as arrays with `null` for the symbolic batch, counts as integers.
func summaryJSON(_ summary: ModelSummary, model: String, cutPoints: CompiledCutPoints? = nil) throws -> String {
    struct Layer: Encodable {
        var name: String
        var op: String
        var output_shape: [Int?]
        var params: Int
        var trainable_params: Int
        /// True when the layer has parameters that train (a frozen layer or one without parameters: false).
        var trainable: Bool
        var macs_per_image: Int
    }
    struct Document: Encodable {
        var model: String
        var layers: [Layer]
        var total_params: Int
        var trainable_params: Int
        var non_trainable_params: Int
        var macs_per_image: Int
        /// A .keelc only: the names --at accepts, and why the others are refused.
        var cut_points: [String]?
        var not_cuttable: [String: String]?
    }
    let layers = summary.rows.map { row in
        Layer(name: row.name, op: row.op, output_shape: row.outputType?.shape.dims.map(\.value) ?? [],
              params: row.parameters, trainable_params: row.trainableParameters,
              trainable: row.trainableParameters > 0,
              macs_per_image: row.macsPerImage)
    }
    let document = Document(model: model, layers: layers, total_params: summary.totalParameters,
                            trainable_params: summary.trainableParameters,
                            non_trainable_params: summary.nonTrainableParameters,
                            macs_per_image: summary.totalMACsPerImage, cut_points: cutPoints?.accepted,
                            not_cuttable: cutPoints.map { Dictionary($0.refused, uniquingKeysWith: { first, _ in first }) })
    return try jsonText(document, pretty: true)
}
