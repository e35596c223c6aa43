import Foundation
import KeelIR
import KeelPasses
import KeelRuntime

/// The whole path from a model file to something that runs: load (parse or import, infer
/// shapes), bind weights, optimise, compile. The CLI's run, bench, extract and compile all go
/// through here, and so can any Swift program that embeds Keel. A `.keelc` file skips straight
/// to compiling: it already holds the optimised graph, its weights and its prepared conv filters.
public struct ModelPipeline {
    public var path: String
    public var weights: WeightSource
    /// Threads each run uses unless it passes its own (`CompiledModel.run(_:threads:)`).
    public var threads: Int
    /// Run only what feeds this layer (feature extraction); nil runs the whole model.
    public var cutAt: String?
    public var optimization: OptimizationLevel
    /// Explicit pass names (`--passes a,b,c`), replacing the level's pipeline.
    public var passes: [String]?
    /// The precision of conv2d and dense products; nil is fp32, or bf16 for a .keelc compiled
    /// with bf16 filters. bf16 runs fp32 on a CPU without bf16 kernels (`Precision.fallbackNote`).
    public var precision: Precision?
    /// Folders besides the model's own tree that files it names may be read from.
    public var confinement = PathConfinement()
    /// Sizes for input dimensions the model leaves symbolic (`ModelLoader.load`).
    public var inputShapes = InputShapes()
    /// What weights and activations may take (`--max-memory`; the system's available memory by default).
    public var memoryBudget = MemoryBudget.available
    /// Check a .keelc file's weights against its stored checksum (`--verify`; reads every byte).
    public var verifiesArtifact = false
    /// Which layers of a batch run image by image (`BatchSchedule`); results do not depend on it.
    public var batchSchedule = BatchSchedule.automatic
    /// The batch the caller will run, when it knows: weights are prepared for it
    /// (`ExecutionContext.preparedBatch`); any batch still runs.
    public var preparedBatch = 1

    public init(path: String, weights: WeightSource = .seeded(0), threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                cutAt: String? = nil, optimization: OptimizationLevel = .O2, passes: [String]? = nil,
                precision: Precision? = nil) {
        self.precision = precision
        self.path = path
        self.weights = weights
        self.threads = threads
        self.cutAt = cutAt
        self.optimization = optimization
        self.passes = passes
    }

    /// What compiling took and did, for `keel bench`, `keel compile` and for telling users their weights are random.
    public struct Report: Sendable {
        public var loadSeconds: Double = 0
        public var compileSeconds: Double = 0
        /// Parameters that got seeded-random values because the model had none for them, and the seed.
        public var seededParameters: Int = 0
        public var seed: UInt64?
        /// How a .keelc was made (nil for a source model).
        public var provenance: ArtifactProvenance?
        /// One `pass: statistic` line per pass run, and the rewrites passes declined (`--explain`).
        public var passLog: [String] = []
        public var explanations: [String] = []
        /// The source model as loaded, before any cut or pass: what `provenance` maps cut points from.
        var loaded: Graph?
    }

    /// The optimised graph with weights bound, before the runtime compiles it.
    public func optimizedGraph(printAfterEach: ((String, String, Graph) -> Void)? = nil) throws -> (graph: Graph, report: Report) {
        let optimized = try optimized(printAfterEach: printAfterEach)
        return (optimized.graph, optimized.report)
    }

    /// The optimised graph, and the conv filters a .keelc file holds already prepared (none for
    /// other files); a filter stored only prepared has no data in the graph.
    public func optimized(printAfterEach: ((String, String, Graph) -> Void)? = nil) throws
        -> (graph: Graph, prepared: [PreparedFilter], report: Report) {
        // One scope from loading to the last pass: a graph no step changed is inferred once.
        try ShapeInference.reusingResults { try optimizedInScope(printAfterEach: printAfterEach) }
    }

    private func optimizedInScope(printAfterEach: ((String, String, Graph) -> Void)?) throws
        -> (graph: Graph, prepared: [PreparedFilter], report: Report) {
        var report = Report()
        let start = DispatchTime.now().uptimeNanoseconds
        var graph: Graph
        if CompiledArtifact.isArtifact(path: path) {
            // Verified like any other graph: the header's checksum guards against damage, not against a crafted file.
            let contents = try CompiledArtifact.read(path: path, verify: verifiesArtifact)
            graph = try ModelLoader.infer(ModelLoader.fixing(contents.graph, inputShapes, path: path))
            if let cutAt { graph = try GraphCut.cut(graph, at: cutAt, file: path, cutPoints: contents.provenance.cutPoints) }
            report.provenance = contents.provenance
            report.seededParameters = contents.provenance.seededParameters
            report.seed = contents.provenance.seed
            let kept = Set(graph.constants.keys)
            report.loadSeconds = seconds(since: start)
            return (graph, contents.prepared.filter { kept.contains($0.constant) }, report)
        }
        graph = try ModelLoader.load(path: path, confinement: confinement, inputShapes: inputShapes)
        // Its structure only: holding weight data here would keep an ONNX file's buffer alive.
        var structure = graph
        for name in structure.constants.keys { structure.constants[name]?.data = nil }
        report.loaded = structure
        if let cutAt { graph = try GraphCut.cut(graph, at: cutAt, file: path) }
        let loadedAt = DispatchTime.now().uptimeNanoseconds
        report.loadSeconds = Double(loadedAt - start) / 1e9
        let bound = try WeightBinder.bind(graph, from: weights, budget: memoryBudget)
        report.seededParameters = bound.filled
        if case .seeded(let seed) = weights { report.seed = seed }
        let pipeline = try passes.map { try PassPipeline(named: $0) } ?? PassPipeline.standard(level: optimization)
        let result = try pipeline.run(bound.graph, printAfterEach: printAfterEach)
        report.passLog = result.log
        report.explanations = result.explanations
        report.compileSeconds = seconds(since: loadedAt)
        return (result.graph, [], report)
    }

    /// What a .keelc of `optimized` (this pipeline's result) records about how it was made.
    public func provenance(of optimized: Graph, report: Report) throws -> ArtifactProvenance {
        var weightsFile: String?, match: String?
        if case .onnx(let file, let matching) = weights {
            weightsFile = file
            match = matching.rawValue
        }
        return ArtifactProvenance(
            source: path, weights: weightsFile, match: match,
            seed: report.seededParameters > 0 ? report.seed : nil, seededParameters: report.seededParameters,
            optimization: passes == nil ? "-O\(optimization.rawValue)" : nil, passes: passes, precision: context().precision.rawValue,
            cutPoints: GraphCut.cutPoints(source: try report.loaded ?? ModelLoader.load(path: path, confinement: confinement, inputShapes: inputShapes),
                                          compiled: optimized))
    }

    public func compile() throws -> (model: CompiledModel, report: Report) {
        try ExecutionContext.checkThreads(threads)
        let (graph, prepared, loadReport) = try optimized()
        var report = loadReport
        let start = DispatchTime.now().uptimeNanoseconds
        // The graph is handed over, not copied: a weight held here too would stay in memory while
        // the model packs it and drops its original.
        let recorded = loadReport.provenance.flatMap { Precision(rawValue: $0.precision) }
        let model = try CompiledModel(graph: consume graph, prepared: prepared,
                                      context: context(prepared: prepared, recorded: recorded))
        report.compileSeconds += seconds(since: start)
        return (model, report)
    }

    /// Threads and precision for a model with these prepared filters, compiled at `recorded` (a
    /// .keelc's provenance; else read from its filters: bf16 ones mean bf16).
    public func context(prepared: [PreparedFilter] = [], recorded: Precision? = nil) -> ExecutionContext {
        let compiledFor: Precision = recorded ?? (prepared.contains { $0.kind == .bf16 } ? .bf16 : .fp32)
        return ExecutionContext(threads: threads, precision: (precision ?? compiledFor).effective, memoryBudget: memoryBudget,
                                batchSchedule: batchSchedule, preparedBatch: preparedBatch)
    }

    private func seconds(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
}
