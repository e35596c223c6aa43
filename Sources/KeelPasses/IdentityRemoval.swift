import KeelIR

/// Drops identity and dropout (a no-op at inference): readers read the input directly.
///
/// Needs: nothing beyond a valid graph. Kept only when the node's output is a graph output
/// and its input is a graph input or a constant, whose name cannot take the output's.
public struct IdentityRemoval: Pass {
    public var name: String { "identity-removal" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "identity/dropout removed")
        var explanations: [String] = []
        for name in graph.nodes.map(\.name) {
            guard let node = editor.node(named: name), node.op == .identity || node.op == .dropout,
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
}
