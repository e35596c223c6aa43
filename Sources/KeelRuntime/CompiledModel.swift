import Foundation
import KeelIR

/// A graph ready to run: float32 constants, and execution plans per binding of its symbolic
/// dimensions (a batch of 1 and a batch of 8 get separate, cached plans).
///
/// Safe to share between threads: concurrent `run` calls run in parallel, each on a plan of its
/// own (a plan owns its arena). A run takes an idle plan for its batch size, or builds one when all
/// are busy (the prepared weights are shared, so an extra plan costs its arena and its lowering,
/// not another weight transform), and gives it back afterwards; the lock guards only that
/// bookkeeping. Each run also splits its GEMMs over `context.threads` threads (or the `threads:`
/// it passes), so concurrent runs pay off when threads times the number of callers does not
/// exceed the cores.
public final class CompiledModel: @unchecked Sendable {
    /// The graph it runs. Filters that only conv2d reads have no values here: `prepared` holds
    /// them until their prepared forms exist (see `PreparedWeights`).
    public private(set) var graph: Graph
    public let context: ExecutionContext
    private(set) var constants: [String: TensorData]
    let constantNames: Set<String>
    /// Weights in the forms their kernels read (packed or transformed filters, folded BN), prepared
    /// once when the model is compiled and shared by every plan.
    let prepared = PreparedWeights()
    /// Plans not in use, per binding and thread count; a plan in use is held by the run using it.
    private var idlePlans: [PlanKey: [ExecutionPlan]] = [:]
    private let lock = NSLock()

    /// `graph` must carry inferred types (run shape inference first) and bound data for every
    /// constant a node reads, except conv filters given in `prepared` form (read from a .keelc):
    /// those are used as they are, and are never prepared again. The other weights are prepared
    /// here (`WeightPreparation`).
    /// `graph` is consumed so that its weights have no holder but this model (and, until prepared,
    /// `PreparedWeights`): a caller's copy would keep each original alive after its prepared form exists.
    public init(graph: consuming Graph, prepared: [PreparedFilter] = [], context: ExecutionContext) throws {
        var used = Set<String>()
        for node in graph.nodes { used.formUnion(node.presentInputs) }
        used.formUnion(graph.outputs.map(\.value))
        let preparedConstants = Set(prepared.map(\.constant))
        let unbound = graph.orderedConstants.filter {
            used.contains($0.name) && $0.data == nil && !preparedConstants.contains($0.name)
        }.map(\.name)
        guard unbound.isEmpty else { throw RuntimeError.unboundConstants(unbound) }
        var filterOnly = Set(graph.constants.keys)
        for node in graph.nodes {
            for (index, input) in node.inputs.enumerated() where !((node.op == .conv2d || node.op == .dense) && index == 1) {
                filterOnly.remove(input)
            }
        }
        filterOnly.subtract(graph.outputs.map(\.value))
        let preparedOnly = filterOnly.intersection(used)
        var converted: [String: TensorData] = [:]
        for (name, constant) in graph.constants where used.contains(name) {
            guard let data = constant.data else { continue }
            converted[name] = data.dtype == .float32 ? data : TensorData(floats: data.floats(), shape: data.shape)
        }
        // Weights often share one allocation (an ONNX file's parsed message). When the filters
        // that will be released outweigh everything else, the rest is copied out now, before any
        // plan points at it, so that releasing the filters frees the shared allocation too.
        let bytes = { (names: [String]) in names.reduce(0) { $0 + (converted[$1]?.elementCount ?? 0) * 4 } }
        let retained = converted.keys.filter { !preparedOnly.contains($0) }
        if bytes(Array(preparedOnly)) > bytes(retained) {
            for name in retained {
                guard let data = converted[name] else { continue }
                converted[name] = TensorData(floats: data.floats(), shape: data.shape)
            }
        }
        for (name, data) in converted { graph.constants[name]?.data = data }
        // Filters only conv2d reads and kernels only dense reads move to `prepared`, their only holder from here on, which
        // drops each one once prepared (see `PreparedWeights`).
        for name in preparedOnly {
            guard let data = converted.removeValue(forKey: name) else { continue }
            self.prepared.holdOriginal(name, data)
            graph.constants[name]?.data = nil
        }
        self.graph = graph
        self.context = context
        self.constants = converted
        self.constantNames = Set(graph.constants.keys)
        self.prepared.seed(prepared)
        // The prepare phase: every weight in the form its layer runs, before any plan exists.
        WeightPreparation(graph: graph, constants: converted, prepared: self.prepared, context: context).run()
    }

    /// The prepared filters, for writing to a .keelc file: the forms the prepare phase made for
    /// the smallest batch. A plan for that batch is built first, so a layer that cannot run
    /// fails here rather than when the file is run.
    public func preparedFilters() throws -> [PreparedFilter] {
        try prepare(bindings: WeightPreparation.smallestBinding(of: graph))
        return prepared.filters
    }

    /// Drops the original values of filters now held prepared (packed for im2col, transformed
    /// for Winograd), so a model does not keep its conv weights twice. Later plans (another batch
    /// size) find the prepared forms, or derive the other form from them.
    private func releasePreparedOriginals() {
        for name in prepared.heldOriginals { prepared.releaseOriginal(name) }
    }

    public var inputNames: [String] { graph.inputs.map(\.name) }
    public var outputNames: [String] { graph.outputs.map(\.name) }

    /// Runs the graph on named inputs; returns every graph output by name.
    public func run(_ inputs: [String: Tensor]) throws -> [String: Tensor] {
        try run(inputs, planKey: PlanKey(bindings: bind(inputs), threads: context.threads))
    }

    /// Runs on `threads` threads instead of `context.threads` (1 for callers that run in parallel
    /// themselves, all cores for one caller alone). Results do not depend on it. A thread count
    /// gets plans of its own, built at its first run; outside 1...`ExecutionContext.maximumThreads`
    /// it is refused.
    public func run(_ inputs: [String: Tensor], threads: Int) throws -> [String: Tensor] {
        try ExecutionContext.checkThreads(threads)
        return try run(inputs, planKey: PlanKey(bindings: bind(inputs), threads: threads))
    }

    private func run(_ inputs: [String: Tensor], planKey: PlanKey) throws -> [String: Tensor] {
        let plan = try checkOut(planKey)
        defer { checkIn(plan, planKey) }
        copyInputs(inputs, into: plan)
        for step in plan.steps { try step.run(plan.scratch) }
        var results: [String: Tensor] = [:]
        for output in plan.outputSlots {
            let count = output.shape.reduce(1, *)
            results[output.name] = try Tensor(shape: output.shape,
                                              values: Array(UnsafeBufferPointer(start: output.pointer, count: count)))
        }
        return results
    }

    /// Builds (and caches) the plan for a batch binding ahead of the first run, so timing a run
    /// measures execution alone; packing weights happens here too.
    public func prepare(bindings: [String: Int]) throws {
        checkIn(try checkOut(bindings), bindings)
    }

    /// Wall time and floating-point work per step, in execution order: each step's median over
    /// `runs` timed runs. One run on a shared host can take twice another (measured on a VM), and
    /// a single run's per-step times then add up to far more than the model's median.
    public func profile(_ inputs: [String: Tensor], runs: Int = 1) throws -> [StepProfile] {
        let bindings = try bind(inputs)
        let plan = try checkOut(bindings)
        defer { checkIn(plan, bindings) }
        var times = [[Double]](repeating: [], count: plan.steps.count)
        for _ in 0..<max(runs, 1) {
            copyInputs(inputs, into: plan)
            for (index, step) in plan.steps.enumerated() {
                let start = DispatchTime.now().uptimeNanoseconds
                try step.run(plan.scratch)
                times[index].append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
        }
        // A layer that runs image by image (`ImageTiling`) has a step per image: one row, their sum.
        var profiles: [StepProfile] = []
        var row: [String: Int] = [:]
        for (step, seconds) in zip(plan.steps, times) {
            let sorted = seconds.sorted()
            let middle = sorted.count / 2
            let median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
            if let index = row[step.node] {
                profiles[index].seconds += median
                profiles[index].flops += step.flops
                profiles[index].bytes += step.bytes
                profiles[index].images += 1
            } else {
                row[step.node] = profiles.count
                profiles.append(StepProfile(node: step.node, op: step.op.rawValue, seconds: median, flops: step.flops,
                                            bytes: step.bytes, choice: step.choice))
            }
        }
        return profiles
    }

    /// The precision, algorithm and kernel each step of the plan for `bindings` runs, by node, in
    /// execution order (building the plan prepares its weights).
    public func kernelChoices(bindings: [String: Int]) throws -> [(node: String, choice: KernelChoice)] {
        let plan = try checkOut(bindings)
        defer { checkIn(plan, bindings) }
        var seen: Set<String> = []
        return plan.steps.filter { seen.insert($0.node).inserted }.map { ($0.node, $0.choice) }
    }

    /// The arena a batch binding needs, and what allocating every intermediate separately would take.
    public func memoryReport(bindings: [String: Int]) throws -> (plannedBytes: Int, naiveBytes: Int) {
        let plan = try checkOut(bindings)
        defer { checkIn(plan, bindings) }
        return (plan.plannedBytes, plan.naiveBytes)
    }

    func copyInputs(_ inputs: [String: Tensor], into plan: ExecutionPlan) {
        for (name, slot) in plan.inputSlots {
            guard let tensor = inputs[name] else { continue }
            tensor.values.withUnsafeBufferPointer { source in
                if let base = source.baseAddress { (plan.arena + slot.offset).update(from: base, count: source.count) }
            }
        }
    }

    /// Which plans a run may use: scratch sizes and work splits depend on the thread count.
    struct PlanKey: Hashable {
        var bindings: [String: Int]
        var threads: Int
    }

    /// An idle plan for `bindings` on the model's threads, or a new one when every such plan is in use.
    func checkOut(_ bindings: [String: Int]) throws -> ExecutionPlan {
        try checkOut(PlanKey(bindings: bindings, threads: context.threads))
    }

    func checkIn(_ plan: ExecutionPlan, _ bindings: [String: Int]) {
        checkIn(plan, PlanKey(bindings: bindings, threads: context.threads))
    }

    private func checkOut(_ key: PlanKey) throws -> ExecutionPlan {
        lock.lock()
        defer { lock.unlock() }
        if let idle = idlePlans[key]?.popLast() { return idle }
        var planContext = context
        planContext.threads = key.threads
        let builder = PlanBuilder(graph: graph, constants: constants, constantNames: constantNames, context: planContext,
                                  prepared: prepared, lowering: KernelLowering.makeStep)
        let plan = try builder.build(bindings: key.bindings)
        releasePreparedOriginals()
        return plan
    }

    private func checkIn(_ plan: ExecutionPlan, _ key: PlanKey) {
        lock.lock()
        defer { lock.unlock() }
        idlePlans[key, default: []].append(plan)
    }

    /// How many plans exist for `bindings` on `threads` threads (the model's by default), for
    /// tests: one per run that overlapped another.
    func planCount(for bindings: [String: Int], threads: Int? = nil) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return idlePlans[PlanKey(bindings: bindings, threads: threads ?? context.threads)]?.count ?? 0
    }

    /// Checks every input against its declared type and binds the symbolic dimensions.
    public func bind(_ inputs: [String: Tensor]) throws -> [String: Int] {
        let names = inputNames
        for name in inputs.keys where !names.contains(name) {
            throw RuntimeError.unknownInput(name, available: names)
        }
        var bindings: [String: Int] = [:]
        for input in graph.inputs {
            guard let tensor = inputs[input.name] else { throw RuntimeError.missingInput(input.name, available: names) }
            let expected = input.type.shape
            guard tensor.shape.count == expected.rank else {
                throw RuntimeError.inputRank(input: input.name, expected: expected, given: tensor.shape)
            }
            for (dim, extent) in zip(expected.dims, tensor.shape) {
                switch dim {
                case .known(let value) where value != extent:
                    throw RuntimeError.inputShape(input: input.name, expected: expected, given: tensor.shape)
                case .symbol(let symbol), .scaled(_, let symbol):
                    let multiple = dim.coefficient
                    if let bound = bindings[symbol], bound * multiple != extent {
                        throw RuntimeError.inputShape(input: input.name, expected: expected.binding([symbol: bound]),
                                                      given: tensor.shape)
                    }
                    guard extent > 0, extent % multiple == 0 else {
                        throw RuntimeError.inputShape(input: input.name, expected: expected, given: tensor.shape)
                    }
                    bindings[symbol] = extent / multiple
                default:
                    break
                }
            }
        }
        return bindings
    }
}

/// Time and work of one step in a profiled run.
public struct StepProfile: Sendable {
    public var node: String
    public var op: String
    public var seconds: Double
    public var flops: Double
    /// Bytes of the step's inputs and outputs: the least it moves.
    public var bytes: Double = 0
    /// The precision, algorithm and kernel the step ran.
    public var choice: KernelChoice = .fp32
    /// Steps the layer ran as: the batch's images when it runs image by image, else 1.
    public var images: Int = 1
    /// The kernel column of `keel bench --profile`: the choice, and whether it ran image by image.
    public var kernelDescription: String { choice.description + (images > 1 ? ", image by image" : "") }
    public var gflopsPerSecond: Double { seconds > 0 ? flops / seconds / 1e9 : 0 }
    public var gigabytesPerSecond: Double { seconds > 0 ? bytes / seconds / 1e9 : 0 }
}
