import KeelIR

/// Feature extraction runs a prefix of the model: the graph cut at a layer, with every node that
/// does not feed that layer removed (the heads of a backbone cost nothing).
public enum GraphCut {
    public static func cut(_ graph: Graph, at layer: String) throws -> Graph {
        guard let node = graph.node(named: layer) ?? graph.producer(of: layer), let value = node.outputs.first else {
            let names = graph.nodes.map(\.name)
            throw ModelFileError(path: graph.source ?? graph.name,
                                 reason: "no layer named '\(layer)'" + suggestion(for: layer, among: names))
        }
        var result = graph
        result.outputs = [GraphOutput(name: layer, value: value, location: node.location)]
        return pruned(result)
    }

    /// Drops nodes and constants that no output depends on.
    public static func pruned(_ graph: Graph) -> Graph {
        var needed = Set(graph.outputs.map(\.value))
        var kept: [Node] = []
        for node in graph.nodes.reversed() where node.outputs.contains(where: needed.contains) {
            kept.append(node)
            needed.formUnion(node.presentInputs)
        }
        var result = graph
        result.nodes = kept.reversed()
        result.constants = graph.constants.filter { needed.contains($0.key) }
        result.inputs = graph.inputs.filter { needed.contains($0.name) }
        let produced = Set(result.nodes.flatMap(\.outputs))
        result.valueTypes = graph.valueTypes.filter { produced.contains($0.key) || needed.contains($0.key) }
        return result
    }
}
