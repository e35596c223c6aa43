/// What an op accepts and how its output types follow from its inputs: the single registry
/// both front ends, the verifier and shape inference consult.
public struct OpSchema: Sendable {
    public struct InputSpec: Sendable {
        public var name: String
        public var optional: Bool
        /// A parameter input (kernel, bias, gamma...) that must name a constant.
        public var isParameter: Bool
        /// Any number of trailing inputs of this kind (concat, sum).
        public var variadic: Bool

        public init(_ name: String, optional: Bool = false, isParameter: Bool = false, variadic: Bool = false) {
            self.name = name
            self.optional = optional
            self.isParameter = isParameter
            self.variadic = variadic
        }
    }

    public struct AttributeSpec: Sendable {
        public var name: String
        /// Applied when the attribute is absent; nil means required.
        public var defaultValue: AttributeValue?
        public var summary: String

        public init(_ name: String, default defaultValue: AttributeValue?, _ summary: String = "") {
            self.name = name
            self.defaultValue = defaultValue
            self.summary = summary
        }
    }

    /// What a shape function sees: the node, its input types aligned with `node.inputs`
    /// (nil for an absent optional input) and the values of constant inputs.
    public struct Context {
        public var node: Node
        public var inputTypes: [TensorType?]
        public var constantValue: (String) -> TensorData?

        public init(node: Node, inputTypes: [TensorType?], constantValue: @escaping (String) -> TensorData? = { _ in nil }) {
            self.node = node
            self.inputTypes = inputTypes
            self.constantValue = constantValue
        }
    }

    public var kind: OpKind
    public var inputs: [InputSpec]
    /// The most outputs a node may name (`Int.max`: any number, as split's pieces).
    public var outputCount: Int
    /// The fewest outputs a node may name; the ones after it are optional trailing outputs that
    /// a node leaves out when nothing reads them (layer_norm's mean and inverse deviation).
    public var minimumOutputCount: Int
    public var attributes: [AttributeSpec]
    /// Output types from input types, one per output the node names (a shape function may
    /// return every optional output; the ones the node leaves out are dropped). Throws a
    /// `Diagnostic` that names the layer and both shapes.
    public var inferTypes: @Sendable (Context) throws -> [TensorType]

    public init(kind: OpKind, inputs: [InputSpec], outputCount: Int = 1, minimumOutputCount: Int? = nil,
                attributes: [AttributeSpec], inferTypes: @escaping @Sendable (Context) throws -> [TensorType]) {
        self.kind = kind
        self.inputs = inputs
        self.outputCount = outputCount
        self.minimumOutputCount = minimumOutputCount ?? outputCount
        self.attributes = attributes
        self.inferTypes = inferTypes
    }

    public func attributeSpec(_ name: String) -> AttributeSpec? { attributes.first { $0.name == name } }
}
