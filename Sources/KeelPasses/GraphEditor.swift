import KeelIR

/// The edits every rewrite needs, with the legality questions they depend on asked in one
/// place: who reads a value, whether a weight belongs to one node alone, and how to drop a node
/// without renaming a graph output.
struct GraphEditor {
    var graph: Graph {
        didSet {
            lookup = Lookup()
            edited = true
        }
    }
    /// Whether anything changed since the graph was inferred: an untouched graph needs no second inference.
    private var edited = false
    /// Where each node, producer and reader is (`NodeIndex`), built at the first query after the
    /// graph is replaced and kept up to date by the edits below: passes ask per node, a linear
    /// search each time made them quadratic in the graph's size, and rebuilding the index after
    /// every edit took DenseNet121's epilogue fusion 48 ms.
    private var lookup = Lookup()

    /// A graph whose types may be stale: `finished()` infers them.
    init(_ graph: Graph) {
        self.graph = graph
        edited = true
    }

    /// Starts from `graph` with its structure verified and every type re-inferred, so a pass
    /// may rely on schema arity and consistent shapes however the graph was made.
    init(inferring graph: Graph) throws { self.graph = try ShapeInference().run(graph).graph }

    /// Holds the index for queries on an editor they cannot mutate; a fresh one whenever the graph is replaced.
    private final class Lookup {
        var index: NodeIndex?
    }

    private var positions: NodeIndex {
        if let built = lookup.index { return built }
        let built = NodeIndex(graph.nodes)
        lookup.index = built
        return built
    }

    /// The index when it is built and can follow edits; nil when the graph changed since the
    /// last query (an edit then costs no rebuild until the next query needs one).
    private var followableIndex: NodeIndex? {
        guard let index = lookup.index, index.isSimple else { return nil }
        return index
    }

    /// Applies an edit of the nodes that `update` brings the index up to date with, instead of
    /// leaving it to be rebuilt. The index is taken before the graph changes, so that once the
    /// graph's `didSet` drops the old lookup its dictionaries are held once and change in place.
    private mutating func editNodes(_ edit: (inout [Node]) -> Void, index update: (inout NodeIndex) -> Void) {
        guard var index = lookup.index else {
            edit(&graph.nodes)
            return
        }
        edit(&graph.nodes)
        update(&index)
        guard index.isSimple else { return }
        lookup.index = index
        #if DEBUG
        let rebuilt = NodeIndex(graph.nodes)
        assert(index.matches(rebuilt), "the node index drifted from the graph")
        #endif
    }

    /// Changes the graph around its nodes (constants, types, outputs, locations), keeping the index.
    private mutating func editKeepingIndex(_ edit: (inout Graph) -> Void) {
        let kept = lookup
        edit(&graph)
        lookup = kept
    }

    // MARK: Queries

    /// Nodes that read `value`, in graph order (a node reading it twice appears once).
    func consumers(of value: String) -> [Node] {
        let index = positions
        return (index.readers[value] ?? []).compactMap { index.byName[$0] }.sorted().map { graph.nodes[$0] }
    }

    func isGraphOutput(_ value: String) -> Bool { graph.outputs.contains { $0.value == value } }

    func isGraphInput(_ value: String) -> Bool { graph.inputs.contains { $0.name == value } }

    func node(named name: String) -> Node? { positions.byName[name].map { graph.nodes[$0] } }

    func producer(of value: String) -> Node? {
        let index = positions
        return index.producers[value].flatMap { index.byName[$0] }.map { graph.nodes[$0] }
    }

    /// Why `node`'s output may not be absorbed into its single reader, or nil when it may:
    /// a fold rewrites what the value means, so nobody else may see it.
    func singleUseProblem(of value: String) -> String? {
        if isGraphOutput(value) { return "'\(value)' is a graph output" }
        let readers = consumers(of: value).map(\.name)
        if readers.count > 1 {
            return "'\(value)' also feeds " + readers.dropFirst().map { "'\($0)'" }.joined(separator: ", ")
        }
        return nil
    }

    /// The reader of `value` when it is the only one and `value` is not a graph output.
    func soleConsumer(of value: String) -> Node? {
        guard singleUseProblem(of: value) == nil else { return nil }
        return consumers(of: value).first
    }

    /// A constant's values as floats, when bound and stored as float32 (or convertible).
    func floats(_ constant: String) -> [Float]? {
        guard let data = graph.constants[constant]?.data, graph.constants[constant]?.type.shape.knownExtents == data.shape else { return nil }
        return data.floats()
    }

    /// Why the constant `name` may not be rewritten for `node`, or nil when it may: it must
    /// have data and be read by `node` alone, so no other path sees the new values.
    func exclusiveConstantProblem(_ name: String, for node: String) -> String? {
        guard let constant = graph.constants[name] else { return "'\(name)' is not a constant" }
        guard constant.data != nil else { return "'\(name)' has no data (bind weights first)" }
        if isGraphOutput(name) { return "'\(name)' is a graph output" }
        let others = consumers(of: name).map(\.name).filter { $0 != node }
        if !others.isEmpty {
            return "its weight '\(name)' is also read by " + others.map { "'\($0)'" }.joined(separator: ", ")
        }
        return nil
    }

    /// A constant name not yet used by any value, derived from `base`.
    func unusedName(_ base: String) -> String {
        func isUsed(_ name: String) -> Bool {
            graph.constants[name] != nil || positions.producers[name] != nil || isGraphInput(name)
        }
        if !isUsed(base) { return base }
        var index = 2
        while isUsed("\(base)_\(index)") { index += 1 }
        return "\(base)_\(index)"
    }

    // MARK: Edits

    mutating func update(_ node: Node) {
        guard let position = positions.byName[node.name] else { return }
        let old = graph.nodes[position]
        // Same name, inputs and outputs: every position still holds, so the lookup stays.
        if old.inputs == node.inputs && old.outputs == node.outputs {
            editKeepingIndex { $0.nodes[position] = node }
        } else {
            editNodes({ $0[position] = node }, index: { $0.replace(old, with: node) })
        }
    }

    /// Inserts `node` just before the node called `name` (which must read what `node` makes).
    mutating func insert(_ node: Node, before name: String) {
        let index = graph.nodes.firstIndex { $0.name == name } ?? graph.nodes.endIndex
        graph.nodes.insert(node, at: index)
    }

    mutating func removeNode(named name: String) {
        guard let position = followableIndex?.byName[name] else {
            graph.nodes.removeAll { $0.name == name }
            return
        }
        let node = graph.nodes[position]
        editNodes({ $0.remove(at: position) }, index: { $0.remove(node, at: position) })
    }

    /// Whether `forward(_:to:)` can succeed: a graph output that would have to be renamed onto a
    /// graph input, a constant or another output cannot be preserved.
    func canForward(_ old: String, to new: String) -> Bool {
        guard isGraphOutput(old) else { return true }
        return producer(of: new) != nil && !isGraphOutput(new)
    }

    /// Makes every reader of `old` read `new` instead. When `old` is a graph output its name is
    /// kept: `new` is renamed to `old` (its producer and readers follow), so outputs users know
    /// by name survive optimisation. Call after removing or rewriting `old`'s producer.
    @discardableResult
    mutating func forward(_ old: String, to new: String) -> Bool {
        guard canForward(old, to: new) else { return false }
        let (from, to) = isGraphOutput(old) ? (new, old) : (old, new)
        if from != to {
            // Only the value's producer and readers mention it, unless duplicates hide some.
            let (isSimple, touched) = { (index: NodeIndex?) -> (Bool, Set<Int>) in
                guard let index else { return (false, Set(graph.nodes.indices)) }
                let names = (index.readers[from] ?? []) + [index.producers[from]].compactMap { $0 }
                return (true, Set(names.compactMap { index.byName[$0] }))
            }(followableIndex)
            let rename = { (nodes: inout [Node]) in
                for position in touched {
                    nodes[position].inputs = nodes[position].inputs.map { $0 == from ? to : $0 }
                    nodes[position].outputs = nodes[position].outputs.map { $0 == from ? to : $0 }
                }
            }
            if isSimple { editNodes(rename, index: { $0.rename(from, to: to) }) } else { rename(&graph.nodes) }
        }
        editKeepingIndex { graph in
            for index in graph.outputs.indices where graph.outputs[index].value == from {
                graph.outputs[index].value = to
            }
            if let type = graph.valueTypes[new] { graph.valueTypes[to] = type }
            graph.valueTypes[from] = nil
        }
        return true
    }

    /// Replaces a constant's values (same name, role and trainable flag); returns bytes written.
    @discardableResult
    mutating func setConstant(_ name: String, floats: [Float], shape: [Int]) -> Int {
        setConstant(name, data: TensorData(floats: floats, shape: shape))
    }

    @discardableResult
    mutating func setConstant(_ name: String, data: TensorData) -> Int {
        guard var constant = graph.constants[name] else { return 0 }
        constant.data = data
        constant.type = TensorType(data.dtype, Shape(known: data.shape))
        editKeepingIndex { $0.constants[name] = constant }
        return data.storage.bytes.count
    }

    /// Adds a float constant under an unused name derived from `base`; returns the name used.
    mutating func addConstant(_ base: String, floats: [Float], shape: [Int], role: ParameterRole,
                              trainable: Bool, location: SourceLocation?) -> String {
        let name = unusedName(base)
        let constant = Constant(name: name, type: TensorType(.float32, Shape(known: shape)), role: role,
                                trainable: trainable, data: TensorData(floats: floats, shape: shape), location: location)
        editKeepingIndex { $0.constants[name] = constant }
        return name
    }

    /// Appends the locations of `absorbed` to `node` (a fused node keeps every origin).
    mutating func absorbLocations(of absorbed: Node, into node: String) {
        guard let index = positions.byName[node] else { return }
        editKeepingIndex { graph in
            for location in absorbed.locations where !graph.nodes[index].locations.contains(location) {
                graph.nodes[index].locations.append(location)
            }
        }
    }

    /// The edited graph with every type re-inferred (which also verifies its structure).
    func finished() throws -> Graph {
        guard edited else { return graph }
        return try ShapeInference().run(graph).graph
    }

    /// The result of a pattern rewrite that replaced the pattern's last node and left the nodes
    /// before it unread (statistics, erf, products): those are dropped here, so `nodesRemoved`
    /// counts them. `original` is the graph the pass started from.
    func finishedRewrite(of original: Graph, _ statistic: PassStatistic) throws -> PassResult {
        guard statistic.rewrites > 0 else { return PassResult(graph: original, counts: statistic) }
        let cleaned = try DeadCodeElimination().run(try finished())
        var counts = statistic
        counts.nodesRemoved = original.nodes.count - cleaned.graph.nodes.count
        return PassResult(graph: cleaned.graph, counts: counts)
    }
}
