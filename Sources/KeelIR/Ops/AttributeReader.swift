/// Reads a node's attributes with the schema's defaults applied, so every consumer (shape
/// inference, the runtime, the printer of summaries) resolves an absent attribute the same way.
/// Errors are `Diagnostic`s at the node, naming the op, the layer and the attribute.
public struct AttributeReader: Sendable {
    public let node: Node
    public let schema: OpSchema

    public init(node: Node) {
        self.node = node
        self.schema = OpRegistry.schema(for: node.op)
    }

    /// The node's own value, else the schema default; nil when neither exists.
    public func value(_ name: String) -> AttributeValue? {
        node.attributes[name] ?? schema.attributeSpec(name)?.defaultValue
    }

    public func has(_ name: String) -> Bool { node.attributes[name] != nil }

    public func int(_ name: String) throws -> Int {
        try convert(name, "an integer") { $0.int(name) }
    }

    public func ints(_ name: String) throws -> [Int] {
        try convert(name, "a list of integers") { $0.ints(name) }
    }

    public func float(_ name: String) throws -> Float {
        try convert(name, "a number") { $0.float(name) }
    }

    public func floats(_ name: String) throws -> [Float] {
        try convert(name, "a list of numbers") { $0.floats(name) }
    }

    public func optionalFloats(_ name: String) throws -> [Float]? {
        value(name) == nil ? nil : try floats(name)
    }

    public func string(_ name: String) throws -> String {
        try convert(name, "a string") { $0.string(name) }
    }

    public func bool(_ name: String) throws -> Bool {
        try convert(name, "a boolean") { $0.bool(name) }
    }

    /// Like `ints` but nil when the attribute is absent and has no default (derived defaults,
    /// such as pooling strides = pool_size or transpose's reversed perm).
    public func optionalInts(_ name: String) throws -> [Int]? {
        value(name) == nil ? nil : try ints(name)
    }

    public func optionalStrings(_ name: String) throws -> [String]? {
        value(name) == nil ? nil : try convert(name, "a list of strings") { $0.strings(name) }
    }

    public func optionalInt(_ name: String) throws -> Int? {
        value(name) == nil ? nil : try int(name)
    }

    /// Enumerated string attributes (`padding`, `layout`...): the value must be one of `allowed`.
    public func choice(_ name: String, _ allowed: [String]) throws -> String {
        let text = try string(name)
        guard allowed.contains(text) else {
            let list = allowed.map { "\"\($0)\"" }.joined(separator: ", ")
            throw error("attribute '\(name)' is \"\(text)\" but must be one of \(list)")
        }
        return text
    }

    /// `conv2d 'block1_conv1'`: how every message names the layer.
    public var layerDescription: String { "\(node.op.rawValue) '\(node.name)'" }

    public func error(_ message: String) -> Diagnostic {
        Diagnostic("\(layerDescription) \(message)", at: node.location)
    }

    private func convert<T>(_ name: String, _ expected: String, _ read: (Attributes) -> T?) throws -> T {
        guard let found = value(name) else { throw error("needs attribute '\(name)'") }
        guard let result = read(Attributes([name: found])) else {
            throw error("attribute '\(name)' must be \(expected), not \(found)")
        }
        return result
    }
}

extension Node {
    /// The attribute's value with the op schema's default applied when the node does not set it.
    public func resolvedAttribute(_ name: String) -> AttributeValue? {
        AttributeReader(node: self).value(name)
    }

    public var attributeReader: AttributeReader { AttributeReader(node: self) }

    /// The node without attributes equal to their schema defaults, so front ends that spell
    /// every Keras argument still print as `{activation="relu", padding="same"}`.
    public func droppingDefaultAttributes() -> Node {
        let schema = OpRegistry.schema(for: op)
        var copy = self
        for name in attributes.names {
            guard let value = attributes[name], let defaultValue = schema.attributeSpec(name)?.defaultValue else { continue }
            if Attributes.sameValue(value, defaultValue) { copy.attributes[name] = nil }
        }
        return copy
    }
}

extension Attributes {
    /// Equal as attribute values, allowing the spellings the typed accessors accept
    /// (`.int(1)` and `.bool(true)`, `.int(2)` and `.float(2)`).
    static func sameValue(_ left: AttributeValue, _ right: AttributeValue) -> Bool {
        if left == right { return true }
        switch (left, right) {
        case (.int(let a), .bool(let b)), (.bool(let b), .int(let a)): return a == (b ? 1 : 0)
        case (.int(let a), .float(let b)), (.float(let b), .int(let a)): return Float(a) == b
        default: return false
        }
    }
}
