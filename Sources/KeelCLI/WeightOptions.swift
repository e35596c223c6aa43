import ArgumentParser
import Foundation
import Keel

extension WeightMatch: ExpressibleByArgument {}

/// `--weights`, `--match` and `--explain`, shared by run and bench.
struct WeightOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Bind the graph's parameters to this ONNX model's initializers.", valueName: "file"))
    var weights: String?

    @Option(name: .long, help: "Match parameters to initializers by Keras layer name (tf2onnx; the default) or by layer order (PyTorch exports).")
    var match: WeightMatch?

    @Flag(help: "Print which initializer each parameter is bound to, and how it is converted.")
    var explain = false

    func validate() throws {
        if weights == nil && (explain || match != nil) { throw ValidationError("--explain and --match need --weights") }
    }

    func source(seed: UInt64) -> WeightSource {
        weights.map { .onnx(path: $0, match: match ?? .name) } ?? .seeded(seed)
    }

    /// Prints the binding of `model`'s parameters, one line each, when --explain is given; to
    /// standard error when standard output carries something else (bench's JSON).
    func explainIfAsked(_ model: String, toStandardError: Bool = false) throws {
        guard explain, let weights else { return }
        let plan = try WeightBindingPlan.make(for: try ModelLoader.load(path: model), onnxPath: weights, match: match ?? .name)
        for line in plan.explanation {
            if toStandardError { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { print(line) }
        }
    }
}
