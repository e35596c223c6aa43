import KeelIR

/// Composes consecutive transposes into one and removes transposes that leave every axis in
/// place, so a transpose followed by its inverse vanishes.
///
/// Needs: shape-inferred graph (a transpose without `perm` reverses its input's rank). Always
/// legal: the first transpose is not changed, only read less (dead-code elimination, or this
/// pass when it has no reader left, removes it).
public struct TransposeCancellation: Pass {
    public var name: String { "transpose-cancellation" }

    public init() {}

    /// The permutation a transpose applies to its input's axes.
    static func permutation(of node: Node, in graph: Graph) -> [Int]? {
        guard node.op == .transpose, let input = node.inputs.first, let rank = graph.type(of: input)?.shape.rank else { return nil }
        guard let perm = try? node.attributeReader.optionalInts("perm") else { return Array((0..<rank).reversed()) }
        return perm.sorted() == Array(0..<rank) ? perm : nil
    }

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "transposes composed or cancelled")
        var explanations: [String] = []
        for name in graph.nodes.map(\.name) {
            guard var node = editor.node(named: name), var perm = Self.permutation(of: node, in: editor.graph),
                  let output = node.outputs.first else { continue }
            if let first = editor.producer(of: node.inputs[0]), let inner = Self.permutation(of: first, in: editor.graph) {
                // transpose(transpose(x, p1), p2) = transpose(x, q) with q[i] = p1[p2[i]].
                perm = perm.map { inner[$0] }
                node.inputs[0] = first.inputs[0]
                node.attributes["perm"] = .ints(perm)
                node.locations += first.locations.filter { !node.locations.contains($0) }
                editor.update(node)
                statistic.rewrites += 1
                if editor.consumers(of: first.outputs[0]).isEmpty && !editor.isGraphOutput(first.outputs[0]) {
                    editor.removeNode(named: first.name)
                    statistic.nodesRemoved += 1
                }
            }
            guard perm == Array(perm.indices) else { continue }
            guard editor.canForward(output, to: node.inputs[0]) else {
                explanations.append("kept '\(node.name)': it leaves axes in place, but graph output '\(output)' would have to take the name of '\(node.inputs[0])'")
                continue
            }
            editor.removeNode(named: node.name)
            editor.forward(output, to: node.inputs[0])
            statistic.nodesRemoved += 1
        }
        return PassResult(graph: try editor.finished(), counts: statistic, explanations: explanations)
    }
}
