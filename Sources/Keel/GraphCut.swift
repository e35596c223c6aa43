import KeelIR
import KeelPasses

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
        return try pruned(result)
    }

    /// Drops nodes and constants that no output depends on, and inputs nothing reads.
    public static func pruned(_ graph: Graph) throws -> Graph {
        var result = try DeadCodeElimination().run(graph).graph
        let read = Set(result.nodes.flatMap(\.presentInputs) + result.outputs.map(\.value))
        result.inputs = result.inputs.filter { read.contains($0.name) }
        return result
    }
}
