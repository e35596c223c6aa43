import KeelIR

/// Removes nodes whose outputs reach no graph output, then constants nothing reads.
///
/// Needs: nothing beyond a valid graph. Always legal: nothing observable reads what it removes.
public struct DeadCodeElimination: Pass {
    public var name: String { "dead-code-elimination" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var live = Set(graph.outputs.map(\.value))
        var kept: [Node] = []
        for node in graph.nodes.reversed() where node.outputs.contains(where: live.contains) {
            kept.append(node)
            live.formUnion(node.presentInputs)
        }
        var result = graph
        // Left as it was when nothing is dead, so inference sees the graph it inferred last.
        if kept.count < graph.nodes.count { result.nodes = kept.reversed() }
        let unused = graph.constants.keys.filter { !live.contains($0) }
        var bytes = 0
        for name in unused {
            bytes += (result.constants[name]?.elementCount ?? 0) * (result.constants[name]?.type.dtype.byteSize ?? 0)
            result.constants[name] = nil
        }
        let statistic = PassStatistic(nodesRemoved: graph.nodes.count - kept.count, rewrites: unused.count,
                                      rewriteNoun: "unused constants removed", weightBytesChanged: bytes)
        return PassResult(graph: try GraphEditor(result).finished(), counts: statistic)
    }
}
