/// Element types a tensor can hold. Keel computes in float32; the others exist for
/// imported constants (shape arithmetic in int64, ONNX weights stored as float16/double).
public enum DType: String, Hashable, Sendable, CaseIterable, Codable {
    case float32 = "f32"
    case float16 = "f16"
    case float64 = "f64"
    case int32 = "i32"
    case int64 = "i64"
    case bool = "bool"

    public var byteSize: Int {
        switch self {
        case .float32, .int32: return 4
        case .float16: return 2
        case .float64, .int64: return 8
        case .bool: return 1
        }
    }

    /// Accepts the short IR spelling (`f32`) and the long one users write (`float32`).
    public init?(spelling: String) {
        if let value = DType(rawValue: spelling) { self = value; return }
        switch spelling {
        case "float32", "float": self = .float32
        case "float16", "half": self = .float16
        case "float64", "double": self = .float64
        case "int32": self = .int32
        case "int64": self = .int64
        default: return nil
        }
    }
}
