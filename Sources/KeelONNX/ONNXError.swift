import KeelIR

/// Everything that can go wrong reading or importing an ONNX file. Each case prints as one
/// line that names the file (and the node or tensor when there is one), like a compiler error.
public enum ONNXError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file could not be opened or mapped.
    case unreadable(path: String, reason: String)
    /// The bytes are not a well-formed protobuf message (truncated or corrupt).
    case malformed(path: String, what: String)
    /// A well-formed message that is not a usable ONNX model (no graph, no IR version...).
    case notAModel(path: String, reason: String)
    /// An operator the importer does not translate.
    case unsupportedOp(path: String, node: String, op: String, domain: String)
    /// A tensor or value whose element type Keel cannot hold.
    case unsupportedDType(path: String, name: String, dataType: Int)
    /// A node reads a value that no input, initializer or earlier node defines.
    case undefinedValue(path: String, node: String, value: String)
    /// The model imports a newer operator set than the importer knows.
    case opsetTooNew(path: String, domain: String, version: Int, supported: Int)
    /// Tensor bytes that disagree with the tensor's declared type and shape.
    case invalidTensor(path: String, name: String, reason: String)
    /// External weights that are missing, out of bounds or outside the model's folder.
    case externalData(path: String, name: String, reason: String)
    /// A node whose inputs or attributes the importer cannot honour.
    case unsupportedNode(path: String, node: String, op: String, reason: String)
    /// A shape given for an input (`InputShapes`) that cannot apply to it.
    case inputShape(path: String, problem: InputShapeError)

    public var description: String { diagnostic.headline }

    /// The same error as a located `Diagnostic`, for front ends that report those.
    public var diagnostic: Diagnostic {
        switch self {
        case .unreadable(let path, let reason):
            return Diagnostic("cannot read ONNX file: \(reason)", at: .named(path))
        case .malformed(let path, let what):
            return Diagnostic("not a valid \(what): the protobuf data is truncated or corrupt", at: .named(path))
        case .notAModel(let path, let reason):
            return Diagnostic("not an ONNX model: \(reason)", at: .named(path))
        case .unsupportedOp(let path, let node, let op, let domain):
            let qualified = domain.isEmpty || domain == "ai.onnx" ? op : "\(domain).\(op)"
            return Diagnostic("unsupported ONNX operator '\(qualified)' in node '\(node)'", at: .named(path, node))
        case .unsupportedDType(let path, let name, let dataType):
            return Diagnostic("'\(name)' has element type \(onnxDataTypeName(dataType)), which Keel does not support "
                              + "(supported: FLOAT, FLOAT16, DOUBLE, INT32, INT64, BOOL)", at: .named(path, name))
        case .undefinedValue(let path, let node, let value):
            return Diagnostic("node '\(node)' reads '\(value)', which no graph input, initializer or earlier node defines",
                              at: .named(path, node))
        case .opsetTooNew(let path, let domain, let version, let supported):
            let name = domain.isEmpty ? "ai.onnx" : domain
            return Diagnostic("the model imports \(name) opset \(version), newer than the newest supported (\(supported))",
                              at: .named(path))
        case .invalidTensor(let path, let name, let reason):
            return Diagnostic("tensor '\(name)': \(reason)", at: .named(path, name))
        case .externalData(let path, let name, let reason):
            return Diagnostic("external data of tensor '\(name)': \(reason)", at: .named(path, name))
        case .unsupportedNode(let path, let node, let op, let reason):
            return Diagnostic("\(op) node '\(node)': \(reason)", at: .named(path, node))
        case .inputShape(let path, let problem):
            return Diagnostic(problem.description, at: .named(path))
        }
    }
}

/// The spelling ONNX uses for a `TensorProto.DataType` code, for messages.
func onnxDataTypeName(_ code: Int) -> String {
    let names = ["UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "STRING", "BOOL",
                 "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16",
                 "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4",
                 "FLOAT4E2M1", "FLOAT8E8M0", "UINT2", "INT2", "FLOAT6E2M3", "FLOAT6E3M2"]
    return names.indices.contains(code) ? names[code] : "unknown type \(code)"
}

/// Keel's dtype for an ONNX `TensorProto.DataType` code; nil for types Keel does not hold.
func dtypeForONNX(_ code: Int) -> DType? {
    switch code {
    case 1: return .float32
    case 6: return .int32
    case 7: return .int64
    case 9: return .bool
    case 10: return .float16
    case 11: return .float64
    default: return nil
    }
}
