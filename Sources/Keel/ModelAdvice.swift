import KeelIR

/// Things about a model that are legal but rarely what was meant, said as notes by `keel check`:
/// the model is accepted, as Keras would accept it, and the user learns what it will do.
public enum ModelAdvice {
    public static func notes(for graph: Graph) -> [Diagnostic.Note] {
        graph.nodes.compactMap { node in
            guard node.op == .dense, let input = node.inputs.first, let inputType = graph.type(of: input),
                  inputType.shape.rank == 4, let output = node.outputs.first, let outputType = graph.type(of: output) else { return nil }
            let positions = inputType.shape.dims[1...2].map(\.description).joined(separator: "×")
            return Diagnostic.Note(
                "dense '\(node.name)' is applied to '\(input)' \(inputType.shape), a rank-4 tensor: it acts on the last axis "
                + "at each of the \(positions) positions, as Keras's Dense does, giving \(outputType.shape); "
                + "add 'flatten()' before it for one vector per image", at: node.location)
        }
    }
}
