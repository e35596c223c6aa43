/// One operation in the graph. Inputs and outputs name values; an empty input name marks an
/// optional input that is absent (as in ONNX). Parameters are inputs that name constants.
public struct Node: Hashable, Sendable {
    /// The layer name users know (`block1_conv1`); unique within a graph.
    public var name: String
    public var op: OpKind
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: Attributes
    /// Every place this node came from; a fused node keeps the locations of all it replaced.
    public var locations: [SourceLocation]

    public init(name: String, op: OpKind, inputs: [String], outputs: [String],
                attributes: Attributes = Attributes(), locations: [SourceLocation] = []) {
        self.name = name
        self.op = op
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
        self.locations = locations
    }

    /// The location errors should point at: the first one the node came from.
    public var location: SourceLocation? { locations.first }

    /// Input names that are present (skips absent optional inputs).
    public var presentInputs: [String] { inputs.filter { !$0.isEmpty } }
}

/// What a constant is for, as Keras names its weights. Drives parameter counting
/// (moving statistics are non-trainable) and weight binding.
public enum ParameterRole: String, Hashable, Sendable, Codable {
    case kernel, bias, gamma, beta
    case movingMean = "moving_mean"
    case movingVariance = "moving_variance"
    /// Not a learned weight: shape vectors, folded constants, imported literals.
    case literal
}

/// A named constant: a learned parameter or a literal. `data` is nil until weights are bound
/// (a .keel graph declares shapes; `--weights` or `--seed` supplies values).
public struct Constant: Hashable, Sendable {
    public var name: String
    public var type: TensorType
    public var role: ParameterRole
    /// Keras's notion: trainable parameters are updated by training; frozen layers and
    /// BatchNorm moving statistics are not.
    public var trainable: Bool
    public var data: TensorData?
    public var location: SourceLocation?

    public init(name: String, type: TensorType, role: ParameterRole, trainable: Bool,
                data: TensorData? = nil, location: SourceLocation? = nil) {
        self.name = name
        self.type = type
        self.role = role
        self.trainable = trainable
        self.data = data
        self.location = location
    }

    /// Whether this constant counts as a model parameter in Keras's summary.
    public var isParameter: Bool { role != .literal }
    public var elementCount: Int { type.shape.elementCount ?? 0 }
}

/// A graph input: a name, a type whose batch may be symbolic, and for images the declared layout.
public struct GraphInput: Hashable, Sendable {
    public var name: String
    public var type: TensorType
    public var layout: Layout?
    public var location: SourceLocation?
    /// Preprocessing declared on the input (a preset name such as `keras_vgg16`), applied to images.
    public var preprocess: String?

    public init(name: String, type: TensorType, layout: Layout? = nil,
                location: SourceLocation? = nil, preprocess: String? = nil) {
        self.name = name
        self.type = type
        self.layout = layout
        self.location = location
        self.preprocess = preprocess
    }
}

/// A named graph output bound to a value.
public struct GraphOutput: Hashable, Sendable {
    public var name: String
    public var value: String
    public var location: SourceLocation?
    /// A text file with one class name per line, for printing top classes by name.
    public var labels: String?

    public init(name: String, value: String, location: SourceLocation? = nil, labels: String? = nil) {
        self.name = name
        self.value = value
        self.location = location
        self.labels = labels
    }
}
