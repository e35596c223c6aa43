/// The activation a conv2d or dense applies in its epilogue, with its parameters. On a node it is
/// the `activation` attribute (one of `Kind`'s names) plus the parameters' own attributes
/// (`alpha`, `beta`, `min`, `max`), so printed IR and .keelc files keep their spelling; passes and
/// lowering read and write it only through this type.
public enum FusedActivation: Hashable, Sendable {
    case none
    case relu
    case sigmoid
    case tanh
    case leakyRelu(alpha: Float)
    case clip(min: Float, max: Float)
    /// x·sigmoid(x) (SiLU).
    case swish
    /// x·max(0, min(1, x/6 + 1/2)).
    case hardSwish
    /// max(0, min(1, alpha·x + beta)).
    case hardSigmoid(alpha: Float, beta: Float)
    /// Softmax over the feature axis (dense only).
    case softmax
    /// x·Φ(x) (erf-exact GELU).
    case gelu
    /// GELU's tanh approximation.
    case geluTanh

    /// The `activation` attribute's spellings. Declaration order is the order messages list them.
    public enum Kind: String, Sendable, CaseIterable {
        case none, relu, sigmoid, tanh
        case leakyRelu = "leaky_relu"
        case clip, swish
        case hardSwish = "hard_swish"
        case hardSigmoid = "hard_sigmoid"
        case softmax
        case gelu
        case geluTanh = "gelu_tanh"

        /// The attributes that carry this activation's parameters.
        public var parameterNames: [String] {
            switch self {
            case .none, .relu, .sigmoid, .tanh, .swish, .hardSwish, .softmax, .gelu, .geluTanh: return []
            case .leakyRelu: return ["alpha"]
            case .clip: return ["min", "max"]
            case .hardSigmoid: return ["alpha", "beta"]
            }
        }
    }

    public var kind: Kind {
        switch self {
        case .none: return .none
        case .relu: return .relu
        case .sigmoid: return .sigmoid
        case .tanh: return .tanh
        case .leakyRelu: return .leakyRelu
        case .clip: return .clip
        case .swish: return .swish
        case .hardSwish: return .hardSwish
        case .hardSigmoid: return .hardSigmoid
        case .softmax: return .softmax
        case .gelu: return .gelu
        case .geluTanh: return .geluTanh
        }
    }

    /// Reads the node's `activation` and its parameters; an activation the op's schema does not
    /// accept is a diagnostic at the node.
    public init(_ attributes: AttributeReader) throws {
        let accepted = attributes.schema.fusedActivations
        let name = try attributes.choice("activation", accepted.map(\.rawValue))
        switch Kind(rawValue: name) ?? .none {
        case .none: self = .none
        case .relu: self = .relu
        case .sigmoid: self = .sigmoid
        case .tanh: self = .tanh
        case .leakyRelu: self = .leakyRelu(alpha: try attributes.float("alpha"))
        case .clip: self = .clip(min: try attributes.float("min"), max: try attributes.float("max"))
        case .swish: self = .swish
        case .hardSwish: self = .hardSwish
        case .hardSigmoid: self = .hardSigmoid(alpha: try attributes.float("alpha"), beta: try attributes.float("beta"))
        case .softmax: self = .softmax
        case .gelu: self = .gelu
        case .geluTanh: self = .geluTanh
        }
    }

    /// The attributes that spell this activation on a node (the name and its parameters).
    public var attributes: [String: AttributeValue] {
        var result: [String: AttributeValue] = ["activation": .string(kind.rawValue)]
        switch self {
        case .none, .relu, .sigmoid, .tanh, .swish, .hardSwish, .softmax, .gelu, .geluTanh: break
        case .leakyRelu(let alpha): result["alpha"] = .float(alpha)
        case .hardSigmoid(let alpha, let beta):
            result["alpha"] = .float(alpha)
            result["beta"] = .float(beta)
        case .clip(let low, let high):
            result["min"] = .float(low)
            result["max"] = .float(high)
        }
        return result
    }
}

extension Node {
    /// The node's fused activation (conv2d, dense); `.none` for ops that take none.
    public var fusedActivation: FusedActivation {
        get throws {
            let reader = attributeReader
            return reader.schema.fusedActivations.isEmpty ? .none : try FusedActivation(reader)
        }
    }

    /// Sets the fused activation, replacing the previous one's parameters.
    public mutating func setFusedActivation(_ activation: FusedActivation) {
        for kind in FusedActivation.Kind.allCases {
            for name in kind.parameterNames { attributes[name] = nil }
        }
        for (name, value) in activation.attributes { attributes[name] = value }
    }
}
