import KeelIR

/// An ONNX model read into Swift values: what the file says, before any translation to the IR.
/// Tensor bytes are shared with the parsed file (see `ONNXReader`), never copied.
public struct ONNXModel: Sendable {
    /// The file the model was read from; errors and source locations name it.
    public var path: String
    public var irVersion: Int
    public var producerName: String
    public var producerVersion: String
    /// Operator-set versions by domain; the default ai.onnx domain is the empty string.
    public var opsetImports: [String: Int]
    public var graph: ONNXGraph
    /// The initializers a training step updates (the keys of `training_info` update bindings),
    /// or nil when the model says nothing about training.
    public var trainableInitializers: Set<String>?

    /// The ai.onnx opset the nodes bind against, if the model imports it.
    public var defaultOpset: Int? { opsetImports[""] ?? opsetImports["ai.onnx"] }
}

public struct ONNXGraph: Sendable {
    public var name: String
    public var nodes: [ONNXNode]
    public var initializers: [ONNXTensor]
    public var inputs: [ONNXValueInfo]
    public var outputs: [ONNXValueInfo]
    /// Recorded types of intermediate values (optional in ONNX).
    public var valueInfo: [ONNXValueInfo]
}

/// A named tensor: an initializer, or the value of a Constant node.
public struct ONNXTensor: Sendable {
    public var name: String
    public var data: TensorData
}

public struct ONNXNode: Sendable {
    /// Empty when the file gives none; the importer then generates `op_N`.
    public var name: String
    public var opType: String
    public var domain: String
    /// Empty strings mark absent optional inputs, as in ONNX.
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: ONNXAttribute]
}

public enum ONNXAttribute: Sendable, Equatable {
    case float(Float)
    case int(Int)
    case string(String)
    case tensor(TensorData)
    case floats([Float])
    case ints([Int])
    case strings([String])
    /// Graphs, sparse tensors, type protos: readable by ONNX, not by Keel. Holds the type code.
    case unsupported(Int)
}

/// One dimension as ONNX declares it.
public enum ONNXDim: Hashable, Sendable {
    case value(Int)
    case param(String)
    /// Neither a value nor a name: a dimension nobody named.
    case unknown
}

/// The declared type of a graph input, output or intermediate value.
public struct ONNXValueInfo: Sendable {
    public var name: String
    /// The ONNX `TensorProto.DataType` code (0 when absent or not a tensor type).
    public var elementType: Int
    /// nil when the file declares no shape (rank unknown).
    public var dims: [ONNXDim]?

    public var dtype: DType? { dtypeForONNX(elementType) }
}
