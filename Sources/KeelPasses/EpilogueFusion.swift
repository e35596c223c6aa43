import KeelIR

/// Moves what follows a conv2d or dense into that op, so the kernel applies it while the output
/// is still in registers: a bias add into its bias (created when absent), a shortcut add of a
/// same-shape tensor into its `residual` input (ResNet and MobileNet blocks), and an activation
/// into its `activation` attribute (x·sigmoid(x), as exporters write swish, counts as one). An
/// activation after a batch_norm the other passes could not fold away goes into the batch_norm.
///
/// Needs: shape-inferred graph; bound bias constants for the add. Legal when the producer
/// applies no activation yet and its output has one reader and is not a graph output; a bias
/// add also needs the producer's kernel and bias to be read by it alone; a residual must be
/// computed before the producer runs and the producer must not pool.
public struct EpilogueFusion: Pass {
    public var name: String { "epilogue-fusion" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "ops fused")
        var explanations: [String] = []
        for name in graph.nodes.map(\.name) {
            guard let node = editor.node(named: name), let input = node.inputs.first,
                  let output = node.outputs.first else { continue }
            var outcome: Result<Int, Rejection>
            switch node.op {
            case .add, .sub:
                outcome = fuseBias(node, in: &editor)
                if node.op == .add, case .failure(let rejection) = outcome, rejection.message.isEmpty {
                    outcome = fuseResidual(node, output: output, in: &editor)
                }
            case .mul:
                outcome = fuseSwish(node, output: output, in: &editor)
            default:
                // The activation this node computes, when some op's epilogue can apply it.
                guard let fusedForm = node.attributeReader.schema.epilogueActivation,
                      let fused = try? fusedForm(node.attributeReader), let producer = editor.producer(of: input),
                      !producer.attributeReader.schema.fusedActivations.isEmpty else { continue }
                outcome = fuseActivation(node, fused, into: producer, reading: input, output: output, in: &editor)
            }
            switch outcome {
            case .success(let bytes):
                statistic.rewrites += 1
                statistic.nodesRemoved += node.op == .mul ? 2 : 1
                statistic.weightBytesChanged += bytes
            case .failure(let rejection) where !rejection.message.isEmpty:
                explanations.append("kept '\(node.name)': \(rejection.message)")
            case .failure:
                break
            }
        }
        return PassResult(graph: try editor.finished(), counts: statistic, explanations: explanations)
    }

    private func fuseActivation(_ node: Node, _ fused: FusedActivation, into producer: Node,
                                reading input: String, output: String, in editor: inout GraphEditor) -> Result<Int, Rejection> {
        let current = (try? producer.fusedActivation) ?? .none
        guard current == .none else {
            return .failure(Rejection("'\(producer.name)' already applies activation \"\(current.kind.rawValue)\""))
        }
        if let problem = editor.singleUseProblem(of: input) { return .failure(Rejection("its input \(problem)")) }
        guard producer.attributeReader.schema.fusedActivations.contains(fused.kind) else {
            return .failure(Rejection("\(fused.kind.rawValue) fuses only into \(Self.producers(accepting: fused.kind)), not \(producer.op.rawValue)"))
        }
        if fused == .softmax {
            let rank = editor.graph.valueTypes[input]?.shape.rank ?? 0
            let axis = (try? node.attributeReader.int("axis")) ?? -1
            guard axis == -1 || axis == rank - 1 else {
                return .failure(Rejection("softmax over axis \(axis) is not dense '\(producer.name)''s feature axis"))
            }
        }
        var updated = producer
        updated.setFusedActivation(fused)
        editor.update(updated)
        editor.removeNode(named: node.name)
        editor.forward(output, to: input)
        editor.absorbLocations(of: node, into: producer.name)
        return .success(0)
    }

    /// Why `producer`'s epilogue cannot take more, or nil when it can: it must be a conv2d or
    /// dense applying no activation, residual or pool yet.
    private func epilogueProblem(_ producer: Node) -> String? {
        let activation = (try? producer.fusedActivation) ?? .none
        if activation != .none { return "'\(producer.name)' already applies activation \"\(activation.kind.rawValue)\"" }
        if producer.inputs.count > 3, !producer.inputs[3].isEmpty { return "'\(producer.name)' already adds a residual" }
        if producer.op == .conv2d, (try? producer.attributeReader.string("pool")) ?? "none" != "none" {
            return "'\(producer.name)' pools its output"
        }
        return nil
    }

    /// add(conv(x), shortcut) with both of the output's shape: the shortcut becomes the conv's
    /// residual input. Either operand may be the conv's; the shortcut must already exist when
    /// the conv runs (an earlier node, a graph input), since the graph keeps its node order.
    private func fuseResidual(_ node: Node, output: String, in editor: inout GraphEditor) -> Result<Int, Rejection> {
        guard node.inputs.count == 2, let shape = editor.graph.valueTypes[output]?.shape else { return .failure(Rejection("")) }
        var reasons: [String] = []
        for (candidate, shortcut) in [(node.inputs[0], node.inputs[1]), (node.inputs[1], node.inputs[0])] {
            guard let producer = editor.producer(of: candidate), producer.attributeReader.schema.hasEpilogue else { continue }
            guard editor.graph.valueTypes[candidate]?.shape == shape, editor.graph.valueTypes[shortcut]?.shape == shape else {
                reasons.append("it broadcasts '\(shortcut)' onto '\(candidate)'")
                continue
            }
            if let problem = epilogueProblem(producer) { reasons.append(problem); continue }
            if let problem = editor.singleUseProblem(of: candidate) { reasons.append("its input \(problem)"); continue }
            guard editor.graph.constants[shortcut] == nil, candidate != shortcut else { continue }
            let position = editor.graph.nodes.firstIndex { $0.name == producer.name } ?? 0
            if let source = editor.producer(of: shortcut),
               (editor.graph.nodes.firstIndex { $0.name == source.name } ?? Int.max) > position {
                reasons.append("'\(shortcut)' is computed after '\(producer.name)'")
                continue
            }
            guard editor.canForward(output, to: candidate) else { continue }
            var updated = producer
            while updated.inputs.count < 3 { updated.inputs.append("") }
            updated.inputs = Array(updated.inputs.prefix(3)) + [shortcut]
            editor.update(updated)
            editor.removeNode(named: node.name)
            editor.forward(output, to: candidate)
            editor.absorbLocations(of: node, into: producer.name)
            return .success(0)
        }
        return .failure(Rejection(reasons.joined(separator: "; ")))
    }

    /// mul(y, sigmoid(y)) with y from a conv2d or dense that both read alone: swish in its epilogue.
    private func fuseSwish(_ node: Node, output: String, in editor: inout GraphEditor) -> Result<Int, Rejection> {
        guard node.inputs.count == 2 else { return .failure(Rejection("")) }
        for (value, gate) in [(node.inputs[0], node.inputs[1]), (node.inputs[1], node.inputs[0])] {
            guard let sigmoid = editor.producer(of: gate), sigmoid.op == .sigmoid, sigmoid.inputs.first == value,
                  let producer = editor.producer(of: value), producer.attributeReader.schema.hasEpilogue,
                  producer.attributeReader.schema.fusedActivations.contains(.swish)
            else { continue }
            if let problem = epilogueProblem(producer) { return .failure(Rejection(problem)) }
            let readers = Set(editor.consumers(of: value).map(\.name))
            guard readers == [sigmoid.name, node.name], !editor.isGraphOutput(value),
                  editor.singleUseProblem(of: gate) == nil, editor.canForward(output, to: value) else {
                return .failure(Rejection("its input '\(value)' has other readers"))
            }
            var updated = producer
            updated.setFusedActivation(.swish)
            editor.update(updated)
            editor.removeNode(named: sigmoid.name)
            editor.removeNode(named: node.name)
            editor.forward(output, to: value)
            editor.absorbLocations(of: sigmoid, into: producer.name)
            editor.absorbLocations(of: node, into: producer.name)
            return .success(0)
        }
        return .failure(Rejection(""))
    }

    /// "dense" or "conv2d or dense": the ops whose epilogue applies `kind`.
    static func producers(accepting kind: FusedActivation.Kind) -> String {
        let names = OpRegistry.all.filter { $0.fusedActivations.contains(kind) }.map(\.kind.rawValue)
        return names.joined(separator: " or ")
    }

    /// An add (or subtract) of a per-channel constant after a conv2d or dense becomes its bias.
    private func fuseBias(_ node: Node, in editor: inout GraphEditor) -> Result<Int, Rejection> {
        guard let output = node.outputs.first else { return .failure(Rejection("")) }
        for input in node.inputs {
            guard let producer = editor.producer(of: input), producer.attributeReader.schema.hasEpilogue,
                  let channelAxis = ChannelAffine.channelAxis(of: producer, in: editor.graph),
                  let shape = editor.graph.valueTypes[input]?.shape,
                  let affine = ChannelAffine.elementwise(node, reading: input, shape: shape, channelAxis: channelAxis, in: editor)
            else { continue }
            if let problem = affine.absorptionProblem(into: producer, in: editor) { return .failure(Rejection(problem)) }
            if let problem = editor.singleUseProblem(of: input) { return .failure(Rejection("its input \(problem)")) }
            guard let bytes = affine.absorb(into: producer, in: &editor) else { continue }
            editor.removeNode(named: node.name)
            editor.forward(output, to: input)
            editor.absorbLocations(of: node, into: producer.name)
            return .success(bytes)
        }
        return .failure(Rejection(""))
    }
}
