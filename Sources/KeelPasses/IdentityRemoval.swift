import KeelIR

/// Drops nodes that return their input unchanged: identity, dropout (a no-op at inference), and
/// the no-op pads, slices and transposes exporters leave behind (Swin pads each map to a multiple
/// of its window and slices it back, both with nothing to do at 224×224: 2% of Swin-T at batch 1
/// copying maps onto themselves). Readers read the input directly.
///
/// Needs: nothing beyond a valid graph. Kept only when the node's output is a graph output
/// and its input is a graph input or a constant, whose name cannot take the output's.
public struct IdentityRemoval: Pass {
    public var name: String { "identity-removal" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "no-op nodes removed")
        var explanations: [String] = []
        let types = editor.graph.valueTypes
        for name in graph.nodes.map(\.name) {
            guard let node = editor.node(named: name), Self.returnsItsInput(node, types: types),
                  let input = node.inputs.first, let output = node.outputs.first else { continue }
            guard editor.canForward(output, to: input) else {
                explanations.append("kept '\(node.name)': graph output '\(output)' would have to take the name of '\(input)'")
                continue
            }
            editor.removeNode(named: node.name)
            editor.forward(output, to: input)
            statistic.rewrites += 1
            statistic.nodesRemoved += 1
        }
        return PassResult(graph: try editor.finished(), counts: statistic, explanations: explanations)
    }

    /// Whether `node`'s one output always equals its data input: identity and dropout; a pad of 0
    /// on every side (whatever its mode); a slice with unit steps whose output keeps its input's
    /// shape (a step of -1 over a whole axis keeps the shape but reverses it); a transpose that
    /// leaves every axis in place.
    static func returnsItsInput(_ node: Node, types: [String: TensorType]) -> Bool {
        guard node.outputs.count == 1, let input = node.inputs.first else { return false }
        let attributes = AttributeReader(node: node)
        switch node.op {
        case .identity, .dropout:
            return true
        case .pad:
            return (try? attributes.ints("pads"))?.allSatisfy { $0 == 0 } ?? false
        case .slice:
            guard let steps = try? attributes.optionalInts("steps") ?? [], steps.allSatisfy({ $0 == 1 }),
                  let before = types[input]?.shape, let after = types[node.outputs[0]]?.shape else { return false }
            return before == after
        case .transpose:
            guard let rank = types[input]?.shape.rank, let permutation = try? attributes.optionalInts("perm") else {
                return false
            }
            return permutation == Array(0..<rank)
        default:
            return false
        }
    }
}
