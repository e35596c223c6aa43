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
        for input in graph.inputs {
            try checkAddressable(input.type, of: "input '\(input.name)'", at: input.location)
            types[input.name] = input.type
        }
        for (name, constant) in graph.constants {
            try checkAddressable(constant.type, of: "weight '\(name)'", at: constant.location)
            types[name] = constant.type
        }
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
            for (value, type) in zip(node.outputs, outputs) {
                try checkAddressable(type, of: "\(node.op.rawValue) '\(node.name)'", at: node.location)
                types[value] = type
            }
        }
        for output in graph.outputs where types[output.value] == nil {
            throw Diagnostic("output '\(output.name)' names undefined value '\(output.value)'", at: output.location)
        }
        var result = graph
        result.valueTypes = types
        let shown = graph.outputs.map { "\($0.name) \(types[$0.value].map(\.description) ?? "?")" }.joined(separator: ", ")
        return PassResult(graph: result, statistic: "typed \(types.count) values over \(graph.nodes.count) nodes; \(shown)")
    }

    /// Refuses a value whose known extents multiply past what an Int can address, so no later
    /// size, stride or MAC product can wrap silently.
    private func checkAddressable(_ type: TensorType, of what: String, at location: SourceLocation?) throws {
        guard Shape.checkedElementCount(type.shape.dims.map { $0.value ?? 1 }) != nil else {
            throw Diagnostic("\(what) has shape \(type.shape): more than \(formatCount(Shape.maximumElementCount)) elements per batch",
                             at: location)
        }
    }
}
