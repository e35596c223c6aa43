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
    /// What kind of computation the op is; passes and lowering switch over this (exhaustively)
    /// instead of keeping their own lists of op kinds.
    public var category: OpCategory
    /// How the output relates to the input's memory.
    public var aliasing: Aliasing
    /// Computes each element from the elements at the same position only, so it works on any
    /// layout unchanged (a layout rewrite passes straight through it).
    public var isLayoutAgnostic: Bool
    /// The fused activations the op's kernel applies in its epilogue (`activation` attribute).
    public var fusedActivations: [FusedActivation.Kind]
    /// Whether the op's kernel ends in a fused epilogue (bias, residual, activation) over
    /// per-output-channel filters, so channel-wise scales, shifts, bias and shortcut adds after it
    /// can fold into it. An op may fuse an activation without one (batch_norm).
    public let hasEpilogue: Bool
    /// For an element-wise op a conv2d or dense epilogue can absorb: the fused activation that
    /// computes the same as this node. Nil for every other op.
    public var epilogueActivation: (@Sendable (AttributeReader) throws -> FusedActivation)?
    /// The ai.onnx op type that becomes this op one-to-one (same inputs; attributes of the same
    /// names and defaults); the ONNX importer derives its translation, and its import-time
    /// folding, from it. Nil when the translation needs code.
    public var onnxOpType: String?
    /// Whether .keel files may write this op as a layer of its own name with no arguments (a
    /// Keras activation layer whose constants are the schema's defaults).
    public var isKeelLayer: Bool
    /// The op's meaning on constant inputs (constant folding, import-time folding, the kernels'
    /// reference); nil for ops not evaluated at compile time.
    public var reference: ReferenceEvaluation?
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

    public init(kind: OpKind, category: OpCategory, aliasing: Aliasing = .none, isLayoutAgnostic: Bool = false,
                fusedActivations: [FusedActivation.Kind] = [], hasEpilogue: Bool? = nil,
                epilogueActivation: (@Sendable (AttributeReader) throws -> FusedActivation)? = nil,
                onnxOpType: String? = nil, isKeelLayer: Bool = false, reference: ReferenceEvaluation? = nil,
                inputs: [InputSpec], outputCount: Int = 1, minimumOutputCount: Int? = nil,
                attributes: [AttributeSpec], inferTypes: @escaping @Sendable (Context) throws -> [TensorType]) {
        self.kind = kind
        self.category = category
        self.aliasing = aliasing
        self.isLayoutAgnostic = isLayoutAgnostic
        self.fusedActivations = fusedActivations
        self.hasEpilogue = hasEpilogue ?? !fusedActivations.isEmpty
        self.epilogueActivation = epilogueActivation
        self.onnxOpType = onnxOpType
        self.isKeelLayer = isKeelLayer
        // A view's values are its input's, read with another shape.
        let viewValues: ReferenceEvaluation = { try $0.input(0).values }
        self.reference = reference ?? (aliasing == .view ? viewValues : nil)
        self.inputs = inputs
        self.outputCount = outputCount
        self.minimumOutputCount = minimumOutputCount ?? outputCount
        self.attributes = attributes
        self.inferTypes = inferTypes
    }

    public func attributeSpec(_ name: String) -> AttributeSpec? { attributes.first { $0.name == name } }

}

/// The kinds of computation ops fall into. A pass or lowering that must consider every op
/// switches over this without `default:`, so a new category makes the compiler point at each
/// place; a new op in an existing category needs no such edit.
public enum OpCategory: String, Sendable, CaseIterable {
    /// Sliding-window layers with a filter parameter (conv2d, conv_transpose).
    case convolution
    /// Matrix products (dense, matmul).
    case matrixProduct
    /// Window and global pooling, and resizing.
    case pooling
    /// Normalisation with statistics or parameters along axes (batch/layer/instance norm, LRN).
    case normalization
    /// One input, one output of the same type, each element from its own input element.
    case unaryElementwise
    /// Inputs broadcast against each other, each output element from the elements at its position.
    case broadcastElementwise
    /// Softmax and reductions along axes.
    case reduction
    /// Output is the input's elements relabelled with another shape or dtype (no kernel).
    case view
    /// Elements rearranged, selected or repeated without arithmetic.
    case dataMovement
}

/// Whether an op's output may live in its input's memory.
public enum Aliasing: Sendable {
    /// The output gets its own buffer.
    case none
    /// The output is the input's buffer read with another shape.
    case view
    /// The output may overwrite the input's buffer once nothing else reads it.
    case inPlace
}
