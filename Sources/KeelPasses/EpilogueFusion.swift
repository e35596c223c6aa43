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

    /// Activations the conv2d and dense kernels apply in their epilogue, with the attributes
    /// each carries over. Softmax over the last axis only fuses into dense.
    static let fusible: [OpKind: (activation: String, attributes: [String])] = [
        .relu: ("relu", []), .sigmoid: ("sigmoid", []), .tanh: ("tanh", []),
        .leakyRelu: ("leaky_relu", ["alpha"]), .clip: ("clip", ["min", "max"]), .softmax: ("softmax", []),
    ]

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
                guard let fused = Self.fusible[node.op], let producer = editor.producer(of: input),
                      producer.op == .conv2d || producer.op == .dense else { continue }
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

    private func fuseActivation(_ node: Node, _ fused: (activation: String, attributes: [String]), into producer: Node,
                                reading input: String, output: String, in editor: inout GraphEditor) -> Result<Int, Rejection> {
        let current = (try? producer.attributeReader.string("activation")) ?? "none"
        guard current == "none" else {
            return .failure(Rejection("'\(producer.name)' already applies activation \"\(current)\""))
        }
        if let problem = editor.singleUseProblem(of: input) { return .failure(Rejection("its input \(problem)")) }
        if node.op == .softmax {
            guard producer.op == .dense else { return .failure(Rejection("softmax fuses only into dense, not \(producer.op.rawValue)")) }
            let rank = editor.graph.valueTypes[input]?.shape.rank ?? 0
            let axis = (try? node.attributeReader.int("axis")) ?? -1
            guard axis == -1 || axis == rank - 1 else {
                return .failure(Rejection("softmax over axis \(axis) is not dense '\(producer.name)''s feature axis"))
            }
        }
        var updated = producer
        updated.attributes["activation"] = .string(fused.activation)
        for attribute in fused.attributes {
            updated.attributes[attribute] = node.resolvedAttribute(attribute)
        }
        editor.update(updated)
        editor.removeNode(named: node.name)
        editor.forward(output, to: input)
        editor.absorbLocations(of: node, into: producer.name)
        return .success(0)
    }

    /// An add (or subtract) of a per-channel constant after a conv2d or dense becomes its bias.
    private func fuseBias(_ node: Node, in editor: inout GraphEditor) -> Result<Int, Rejection> {
        guard let output = node.outputs.first else { return .failure(Rejection("")) }
        for input in node.inputs {
            guard let producer = editor.producer(of: input), producer.op == .conv2d || producer.op == .dense,
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
