import KeelIR

/// Re-infers the type of every value from the graph inputs and constants, in node order, with
/// the op registry's shape functions. The first pass: everything after it relies on types.
/// It verifies the graph's structure first, so a misspelt attribute (`stride`) is an error
/// rather than a silently applied default.
public struct ShapeInference: Pass {
    public var name: String { "shape-inference" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        try verify(graph, requiringTypes: false)
        var types: [String: TensorType] = [:]
        for input in graph.inputs { types[input.name] = input.type }
        for (name, constant) in graph.constants { types[name] = constant.type }
        let constants = graph.constants
        let lookup: (String) -> TensorData? = { constants[$0]?.data }
        for node in graph.nodes {
            var inputTypes: [TensorType?] = []
            for input in node.inputs {
                if input.isEmpty { inputTypes.append(nil); continue }
                guard let type = types[input] else {
                    let later = graph.producer(of: input).map { ", which node '\($0.name)' produces later (nodes out of topological order)" } ?? ""
                    throw Diagnostic("\(node.op.rawValue) '\(node.name)' reads undefined value '\(input)'\(later)", at: node.location)
                }
                inputTypes.append(type)
            }
            let outputs = try inferOutputTypes(of: node, inputTypes: inputTypes, constantValue: lookup)
            for (value, type) in zip(node.outputs, outputs) { types[value] = type }
        }
        for output in graph.outputs where types[output.value] == nil {
            throw Diagnostic("output '\(output.name)' names undefined value '\(output.value)'", at: output.location)
        }
        var result = graph
        result.valueTypes = types
        let shown = graph.outputs.map { "\($0.name) \(types[$0.value].map(\.description) ?? "?")" }.joined(separator: ", ")
        return PassResult(graph: result, statistic: "typed \(types.count) values over \(graph.nodes.count) nodes; \(shown)")
    }
}
