/// A model: inputs, constants, nodes in topological order, named outputs, and the inferred
/// type of every value. A value type: passes take a graph and return a new one.
public struct Graph: Hashable, Sendable {
    public var name: String
    public var inputs: [GraphInput]
    public var constants: [String: Constant]
    /// Kept in a valid topological order by every producer of graphs; the verifier checks it.
    public var nodes: [Node]
    public var outputs: [GraphOutput]
    /// Types of every value (inputs, constants and node outputs), filled by shape inference.
    public var valueTypes: [String: TensorType]
    /// Where the graph came from (a .keel path or an .onnx path).
    public var source: String?

    public init(name: String, inputs: [GraphInput] = [], constants: [String: Constant] = [:],
                nodes: [Node] = [], outputs: [GraphOutput] = [], valueTypes: [String: TensorType] = [:],
                source: String? = nil) {
        self.name = name
        self.inputs = inputs
        self.constants = constants
        self.nodes = nodes
        self.outputs = outputs
        self.valueTypes = valueTypes
        self.source = source
    }

    /// The type of a value: an input, a constant, or a node output already inferred.
    public func type(of value: String) -> TensorType? {
        if let type = valueTypes[value] { return type }
        if let constant = constants[value] { return constant.type }
        return inputs.first { $0.name == value }?.type
    }

    /// The node that produces `value`, if any.
    public func producer(of value: String) -> Node? {
        nodes.first { $0.outputs.contains(value) }
    }

    /// Maps each value to the nodes that read it (a node reading a value twice appears once).
    public func consumers() -> [String: [String]] {
        var result: [String: [String]] = [:]
        for node in nodes {
            for input in Set(node.presentInputs) { result[input, default: []].append(node.name) }
        }
        return result
    }

    public func node(named name: String) -> Node? { nodes.first { $0.name == name } }

    /// Constants in a stable order (the order nodes first read them), for printing and counting.
    public var orderedConstants: [Constant] {
        var seen = Set<String>()
        var result: [Constant] = []
        for node in nodes {
            for input in node.presentInputs where !seen.contains(input) {
                if let constant = constants[input] {
                    seen.insert(input)
                    result.append(constant)
                }
            }
        }
        for name in constants.keys.sorted() where !seen.contains(name) {
            if let constant = constants[name] { result.append(constant) }
        }
        return result
    }
}
