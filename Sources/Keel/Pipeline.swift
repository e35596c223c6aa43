import Foundation
import KeelIR
import KeelRuntime

/// The whole path from a model file to something that runs: load (parse or import, infer
/// shapes), bind weights, compile. The CLI's run, bench and extract all go through here, and
/// so can any Swift program that embeds Keel.
public struct ModelPipeline {
    public var path: String
    public var weights: WeightSource
    public var threads: Int
    /// Run only what feeds this layer (feature extraction); nil runs the whole model.
    public var cutAt: String?

    public init(path: String, weights: WeightSource = .seeded(0), threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                cutAt: String? = nil) {
        self.path = path
        self.weights = weights
        self.threads = threads
        self.cutAt = cutAt
    }

    /// What compiling took, for `keel bench` and for telling users their weights are random.
    public struct Report: Sendable {
        public var loadSeconds: Double
        public var compileSeconds: Double
        /// Parameters that got seeded-random values because the model had none for them.
        public var seededParameters: Int
    }

    public func compile() throws -> (model: CompiledModel, report: Report) {
        let start = DispatchTime.now().uptimeNanoseconds
        var loaded = try ModelLoader.load(path: path)
        if let cutAt { loaded = try GraphCut.cut(loaded, at: cutAt) }
        let loadedAt = DispatchTime.now().uptimeNanoseconds
        let (bound, seeded) = try WeightBinder.bind(loaded, from: weights)
        let model = try CompiledModel(graph: bound, context: ExecutionContext(threads: threads))
        let end = DispatchTime.now().uptimeNanoseconds
        return (model, Report(loadSeconds: Double(loadedAt - start) / 1e9,
                              compileSeconds: Double(end - loadedAt) / 1e9, seededParameters: seeded))
    }
}
