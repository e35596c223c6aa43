import ArgumentParser
import Foundation
import Keel

struct SummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary",
        abstract: "Print a Keras-style table of layers, output shapes and parameter counts.")

    @Argument(help: modelFileHelp)
    var file: String

    @Flag(help: "Print JSON: {model, layers: [{name, op, output_shape, params, trainable}], total_params, trainable_params, non_trainable_params}; the inputs are the first layers (op \"input\"), as in the table.")
    var json = false

    @OptionGroup var terminal: QuietOption

    @OptionGroup var paths: ModelPathOptions

    func run() throws {
        try reportingErrors {
            let graph = try ModelLoader.load(path: file, confinement: paths.confinement)
            let summary = ModelSummary(graph)
            if json {
                print(try summaryJSON(summary, model: graph.name))
            } else {
                print("Model: \"\(graph.name)\"")
                print(summary)
            }
        }
    }
}

/// The JSON contract: shapes as arrays with `null` for the symbolic batch, counts as integers.
func summaryJSON(_ summary: ModelSummary, model: String) throws -> String {
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
                            macs_per_image: summary.totalMACsPerImage)
    return try jsonText(document, pretty: true)
}
