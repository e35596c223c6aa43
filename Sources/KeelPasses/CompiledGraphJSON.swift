import Foundation
import KeelIR

/// A JSON description of a compiled graph's nodes, for tools that inspect what `keel compile`
/// produced: per node its name, op, inputs, outputs with shapes, attributes and source locations.
public struct CompiledGraphDescription: Codable, Hashable, Sendable {
    public struct Value: Codable, Hashable, Sendable {
        public var name: String
        public var dtype: String?
        /// Extents as numbers and symbols (the batch) as strings: `["N", 7, 7, 512]`.
        public var shape: [JSONScalar]?
    }

    public struct NodeDescription: Codable, Hashable, Sendable {
        public var name: String
        public var op: String
        public var inputs: [String]
        public var outputs: [Value]
        public var attributes: [String: JSONScalar]
        public var locations: [String]
        /// What the runtime chose for the node at batch 1: "precision", "algorithm", "kernel".
        public var kernel: [String: String]?
    }

    public var graph: String
    public var inputs: [Value]
    public var nodes: [NodeDescription]
    public var outputs: [String: String]

    /// `kernels` gives, per node name, what the runtime chose to run it with.
    public init(_ graph: Graph, kernels: [String: [String: String]] = [:]) {
        func value(_ name: String) -> Value {
            let type = graph.type(of: name)
            return Value(name: name, dtype: type?.dtype.rawValue,
                         shape: type?.shape.dims.map { $0.value.map(JSONScalar.int) ?? .string($0.description) })
        }
        self.graph = graph.name
        inputs = graph.inputs.map { value($0.name) }
        nodes = graph.nodes.map { node in
            var attributes: [String: JSONScalar] = [:]
            for name in node.attributes.names {
                if let attribute = node.attributes[name] { attributes[name] = JSONScalar(attribute) }
            }
            return NodeDescription(name: node.name, op: node.op.rawValue, inputs: node.inputs,
                                   outputs: node.outputs.map(value), attributes: attributes,
                                   locations: node.locations.map(\.description), kernel: kernels[node.name])
        }
        outputs = Dictionary(graph.outputs.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
    }
}

/// An attribute or dimension as JSON: a number, a string, a boolean or a list of them.
public indirect enum JSONScalar: Codable, Hashable, Sendable {
    case int(Int), float(Float), string(String), bool(Bool), list([JSONScalar])

    init(_ attribute: AttributeValue) {
        switch attribute {
        case .int(let value): self = .int(value)
        case .ints(let values): self = .list(values.map(JSONScalar.int))
        case .float(let value): self = .float(value)
        case .floats(let values): self = .list(values.map(JSONScalar.float))
        case .string(let value): self = .string(value)
        case .strings(let values): self = .list(values.map(JSONScalar.string))
        case .bool(let value): self = .bool(value)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .int(let value): try container.encode(value)
        case .float(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .list(let values): try container.encode(values)
        }
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Int.self) { self = .int(value) }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Float.self) { self = .float(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else { self = .list(try container.decode([JSONScalar].self)) }
    }
}

/// The compiled graph as pretty-printed JSON with sorted keys (infinite clip bounds print as
/// "inf" / "-inf").
public func compiledGraphJSON(_ graph: Graph, kernels: [String: [String: String]] = [:]) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    guard let data = try? encoder.encode(CompiledGraphDescription(graph, kernels: kernels)) else { return "{}" }
    return String(decoding: data, as: UTF8.self)
}
