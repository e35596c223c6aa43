import KeelIR

/// Moves a bias add and an activation that follow a conv2d or dense into that op: the add into
/// its bias (created when absent), the activation into its `activation` attribute, so the
/// kernel applies both while the output is still in cache.
///
/// Needs: shape-inferred graph; bound bias constants for the add. Legal when the producer
/// applies no activation yet and its output has one reader and is not a graph output; a bias
/// add also needs the producer's kernel and bias to be read by it alone.
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
            let outcome: Result<Int, Rejection>
            switch node.op {
            case .add, .sub: outcome = fuseBias(node, in: &editor)
            default:
                // The activation this node computes, when some op's epilogue can apply it.
                guard let fusedForm = node.attributeReader.schema.epilogueActivation,
                      let fused = try? fusedForm(node.attributeReader), let producer = editor.producer(of: input),
                      producer.attributeReader.schema.hasEpilogue else { continue }
                outcome = fuseActivation(node, fused, into: producer, reading: input, output: output, in: &editor)
            }
            switch outcome {
            case .success(let bytes):
                statistic.rewrites += 1
                statistic.nodesRemoved += 1
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
