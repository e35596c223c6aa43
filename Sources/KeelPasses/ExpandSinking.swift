import KeelIR

/// Moves an expand of a constant below the ops that read it when they compute the same thing at
/// every expanded index: `op(expand(c))` becomes `expand(op(c))`, so constant folding computes
/// `op(c)` once at compile time instead of the plan computing it for every image. EdgeNeXt's
/// positional encoding fills a mask of the batch's shape (the importer makes it a constant
/// expanded to [N,H,W]) and runs casts, a not, cumulative sums, sines and cosines, concatenations
/// and reshapes on it: folded, it costs nothing per run, and its bool steps, which the runtime
/// cannot compute, never reach the plan.
///
/// An op moves past an expand when each of its inputs is a constant, a value computed from
/// constants, or an expanded one, and it treats the expanded axes (extent 1 in the constant,
/// larger or a run-time size after the expand) as independent positions: element-wise ops and
/// casts always; transposes and unsqueezes always; a cumulative sum or slice along other axes; a
/// reshape that copies the expanded axes and every axis before them (target 0); a concatenation
/// along another axis of inputs expanded alike. Layers (convolutions, products) are left to read
/// the expand: they run per image anyway. An element-wise op whose other operands span the
/// expanded axes already (the encoding added to the activations; also any expand, constant or
/// not, such as timm's ECA gate `x * y.expand_as(x)`) reads the expand's source and broadcasts
/// it, so the expand is not run at all.
///
/// Needs: shape-inferred graph. Runs before constant folding.
public struct ExpandSinking: Pass {
    public var name: String { "expand-sinking" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "ops moved past or reading through an expand of a constant")
        var explanations: [String] = []
        var types = editor.graph.valueTypes
        // Values whose every input is, transitively, a constant: what constant folding computes.
        var fromConstants = Set(editor.graph.constants.keys)
        // The constant-computed value each expand of one broadcasts, and the source of every expand.
        var expandSources: [String: String] = [:]
        var expandInputs: [String: String] = [:]
        // The expand each moved node is followed by, inserted in one sweep at the end: inserting
        // them one at a time re-indexed the graph each time (Swin-T: 176 of them, 110 ms).
        var addedExpands: [String: Node] = [:]
        for name in graph.nodes.map(\.name) {
            guard let node = editor.node(named: name), node.outputs.count == 1, let output = node.outputs.first else { continue }
            let inputs = node.presentInputs
            if node.op == .expand, let source = inputs.first {
                expandInputs[output] = source
                if fromConstants.contains(source) { expandSources[output] = source }
                continue
            }
            if !inputs.isEmpty, inputs.allSatisfy(fromConstants.contains) {
                fromConstants.insert(output)
                continue
            }
            guard inputs.contains(where: { expandInputs[$0] != nil }) else { continue }
            guard inputs.contains(where: { expandSources[$0] != nil }),
                  inputs.allSatisfy({ fromConstants.contains($0) || expandSources[$0] != nil }) else {
                // An element-wise op whose other operands already span the expanded axes
                // broadcasts the source itself: it reads it, and the expand goes (timm's ECA gate,
                // `x * y.expand_as(x)`, whose expand kept ECA-ResNet's stages NCHW).
                var reading = node
                reading.inputs = node.inputs.map { expandInputs[$0] ?? $0 }
                if OpRegistry.schema(for: node.op).category == .broadcastElementwise,
                   let type = try? inferOutputTypes(of: reading, inputTypes: reading.inputs.map { $0.isEmpty ? nil : types[$0] }).first,
                   type == types[output] {
                    editor.update(reading)
                    statistic.rewrites += 1
                }
                continue
            }
            if let problem = Self.problem(moving: node, sources: expandSources, types: types) {
                explanations.append("kept an expand before '\(node.name)': \(problem)")
                continue
            }
            var moved = node
            moved.inputs = node.inputs.map { expandSources[$0] ?? $0 }
            let unexpanded = editor.unusedName("\(output)/unexpanded")
            moved.outputs = [unexpanded]
            let inputTypes = moved.inputs.map { $0.isEmpty ? nil : types[$0] }
            guard let original = types[output],
                  let movedType = (try? inferOutputTypes(of: moved, inputTypes: inputTypes,
                                                         constantValue: { editor.graph.constants[$0]?.data }))?.first,
                  let target = Self.expandAttributes(from: movedType.shape, to: original.shape) else {
                explanations.append("kept an expand before '\(node.name)': its result does not broadcast back to \(types[output]?.shape.description ?? "?")")
                continue
            }
            editor.update(moved)
            let expand = Node(name: editor.unusedName("\(node.name)/expand"), op: .expand, inputs: [unexpanded],
                              outputs: [output], attributes: Attributes(target), locations: node.locations)
            addedExpands[moved.name] = expand
            types[unexpanded] = movedType
            fromConstants.insert(unexpanded)
            expandSources[output] = unexpanded
            expandInputs[output] = unexpanded
            statistic.rewrites += 1
        }
        guard statistic.rewrites > 0 else { return PassResult(graph: graph, counts: statistic, explanations: explanations) }
        if !addedExpands.isEmpty {
            editor.graph.nodes = editor.graph.nodes.flatMap { node in [node] + (addedExpands[node.name].map { [$0] } ?? []) }
        }
        let cleaned = try DeadCodeElimination().run(try editor.finished())
        statistic.nodesRemoved = graph.nodes.count + statistic.rewrites - cleaned.graph.nodes.count
        return PassResult(graph: cleaned.graph, counts: statistic, explanations: explanations)
    }

    /// Why `node` cannot compute on its expanded inputs' constants instead, or nil when it can.
    static func problem(moving node: Node, sources: [String: String], types: [String: TensorType]) -> String? {
        // The axes each expanded input broadcasts, which must agree.
        var expandedAxes: Set<Int>? = nil
        for input in node.presentInputs {
            guard let source = sources[input] else { continue }
            guard let before = types[source]?.shape, let after = types[input]?.shape, before.rank == after.rank else {
                return "the expand adds axes"
            }
            let axes = Set((0..<after.rank).filter { before[$0] == .known(1) && after[$0] != .known(1) })
            if let expandedAxes, expandedAxes != axes { return "its inputs are expanded along different axes" }
            expandedAxes = axes
        }
        let axes = expandedAxes ?? []
        // An expand that broadcasts nothing is a copy: anything may read its source instead.
        if axes.isEmpty { return nil }
        let attributes = AttributeReader(node: node)
        let rank = node.inputs.first.flatMap { types[$0]?.shape.rank } ?? 0
        func resolved(_ axis: Int) -> Int { axis < 0 ? axis + rank : axis }
        switch OpRegistry.schema(for: node.op).category {
        case .unaryElementwise, .broadcastElementwise:
            return nil
        default:
            break
        }
        switch node.op {
        case .cast, .transpose, .unsqueeze:
            return nil
        case .cumulativeSum:
            guard let axis = try? attributes.int("axis"), !axes.contains(resolved(axis)) else { return "it sums along an expanded axis" }
            return nil
        case .slice:
            guard let starts = try? attributes.ints("starts"), let sliced = try? attributes.optionalInts("axes") ?? Array(starts.indices),
                  axes.isDisjoint(with: sliced.map(resolved)) else { return "it slices an expanded axis" }
            return nil
        case .squeeze:
            guard let squeezed = try? attributes.optionalInts("axes"), axes.isDisjoint(with: squeezed.map(resolved)) else {
                return "it may squeeze an expanded axis"
            }
            return nil
        case .reshape:
            // The expanded axes and every axis before them keep their places (target 0: copied).
            guard let target = try? attributes.ints("shape"), (try? attributes.int("allowzero")) ?? 0 == 0,
                  let last = axes.max(), last < target.count, target[...last].allSatisfy({ $0 == 0 }) else {
                return "it regroups an expanded axis"
            }
            return nil
        case .concat:
            guard let axis = try? attributes.int("axis"), !axes.contains(resolved(axis)),
                  node.presentInputs.allSatisfy({ sources[$0] != nil }) else {
                return "it joins along an expanded axis or with a value that is not expanded"
            }
            return nil
        default:
            return "\(node.op.rawValue) is not known to compute each expanded position alike"
        }
    }

    /// The expand attributes that broadcast `shape` to `target`: per axis the target's extent or
    /// its run-time multiple (`shape` and `symbols`); nil when `shape` does not broadcast to it.
    static func expandAttributes(from shape: Shape, to target: Shape) -> [String: AttributeValue]? {
        guard shape.rank == target.rank, zip(shape.dims, target.dims).allSatisfy({ $0 == $1 || $0 == .known(1) }) else { return nil }
        let symbols = target.dims.map { $0.symbolName ?? "" }
        var attributes: [String: AttributeValue] = ["shape": .ints(target.dims.map(\.coefficient))]
        if symbols.contains(where: { !$0.isEmpty }) { attributes["symbols"] = .strings(symbols) }
        return attributes
    }
}
