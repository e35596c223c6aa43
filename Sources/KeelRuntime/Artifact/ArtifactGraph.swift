import KeelIR

/// The graph of a .keelc file in Codable form. The IR types stay free of serialisation concerns;
/// this mirror is the file format's one definition of what is stored.
struct ArtifactGraph: Codable {
    struct Dimension: Codable {
        var known: Int?
        var symbol: String?
        /// The multiple of `symbol` (absent for 1, so files without multiples read as before).
        var scale: Int?

        init(_ dim: Dim) {
            switch dim {
            case .known(let extent): known = extent
            case .symbol(let name): symbol = name
            case .scaled(let coefficient, let name): symbol = name; scale = coefficient
            }
        }

        func dim() throws -> Dim {
            if let known { return .known(known) }
            if let symbol, let scale {
                guard scale >= 1 else { throw ArtifactError.corrupt("dimension \(scale)·\(symbol) has a multiple below 1") }
                return .scaled(symbol, by: scale)
            }
            if let symbol { return .symbol(symbol) }
            throw ArtifactError.corrupt("a dimension has neither an extent nor a symbol")
        }
    }

    struct TypeRecord: Codable {
        var dtype: String
        var shape: [Dimension]

        init(_ type: TensorType) {
            dtype = type.dtype.rawValue
            shape = type.shape.dims.map(Dimension.init)
        }

        func tensorType() throws -> TensorType {
            guard let dtype = DType(rawValue: dtype) else { throw ArtifactError.corrupt("unknown dtype '\(dtype)'") }
            return TensorType(dtype, Shape(try shape.map { try $0.dim() }))
        }
    }

    struct Location: Codable {
        var file: String
        var line: Int
        var column: Int
    }

    enum Attribute: Codable {
        case int(Int), ints([Int]), float(Float), floats([Float]), string(String), strings([String]), bool(Bool)

        init(_ value: AttributeValue) {
            switch value {
            case .int(let v): self = .int(v)
            case .ints(let v): self = .ints(v)
            case .float(let v): self = .float(v)
            case .floats(let v): self = .floats(v)
            case .string(let v): self = .string(v)
            case .strings(let v): self = .strings(v)
            case .bool(let v): self = .bool(v)
            }
        }

        var value: AttributeValue {
            switch self {
            case .int(let v): return .int(v)
            case .ints(let v): return .ints(v)
            case .float(let v): return .float(v)
            case .floats(let v): return .floats(v)
            case .string(let v): return .string(v)
            case .strings(let v): return .strings(v)
            case .bool(let v): return .bool(v)
            }
        }
    }

    struct NodeRecord: Codable {
        var name: String
        var op: String
        var inputs: [String]
        var outputs: [String]
        var attributes: [String: Attribute]
        var locations: [Location]
    }

    struct ConstantRecord: Codable {
        var name: String
        var type: TypeRecord
        var role: String
        var trainable: Bool
        /// Where the bytes sit in the weights section, relative to its start.
        var offset: Int
        var byteCount: Int
        /// True when the file keeps only the prepared form of this filter (no bytes here). Absent in version 1.
        var preparedOnly: Bool?
    }

    /// A conv filter stored in its kernel's form (`PreparedFilter`); version 3 (2 had row-major Winograd matrices).
    struct PreparedRecord: Codable {
        var key: String
        var kind: PreparedFilter.Kind
        var dims: [Int]
        /// Where the float32 values sit in the prepared section, relative to its start.
        var offset: Int
        var byteCount: Int
    }

    struct InputRecord: Codable {
        var name: String
        var type: TypeRecord
        var layout: String?
        var preprocess: String?
    }

    struct OutputRecord: Codable {
        var name: String
        var value: String
        var labels: String?
    }

    var name: String
    var source: String?
    var inputs: [InputRecord]
    var constants: [ConstantRecord]
    var nodes: [NodeRecord]
    var outputs: [OutputRecord]
    var valueTypes: [String: TypeRecord]
    /// Absent in version 1.
    var prepared: [PreparedRecord]?
    /// How the file was made; version 4 on.
    var provenance: ArtifactProvenance?
    /// `ContentChecksum` of every stored weight and prepared filter, in hex; nil in older files.
    var contentChecksum: String? = nil
}

extension SourceLocation {
    init(_ record: ArtifactGraph.Location) { self.init(file: record.file, line: record.line, column: record.column) }
}
