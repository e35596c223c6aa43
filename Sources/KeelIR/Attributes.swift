/// An attribute value on a node. Attributes are named, as in ONNX and Keras, so the printed IR reads like the source.
public enum AttributeValue: Hashable, Sendable, CustomStringConvertible {
    case int(Int)
    case ints([Int])
    case float(Float)
    case floats([Float])
    case string(String)
    case strings([String])
    case bool(Bool)

    public var description: String {
        switch self {
        case .int(let value): return String(value)
        case .ints(let values): return "[" + values.map(String.init).joined(separator: ",") + "]"
        case .float(let value): return formatFloat(value)
        case .floats(let values): return "[" + values.map(formatFloat).joined(separator: ",") + "]"
        case .string(let value): return "\"" + value + "\""
        case .strings(let values): return "[" + values.map { "\"" + $0 + "\"" }.joined(separator: ",") + "]"
        case .bool(let value): return value ? "true" : "false"
        }
    }
}

/// Shortest text that reads back as the same Float (so golden IR files are stable).
public func formatFloat(_ value: Float) -> String {
    if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) + ".0" }
    return "\(value)"
}

/// Named attributes with typed accessors. Lookups of absent names return nil so each op's
/// schema supplies its own defaults.
public struct Attributes: Hashable, Sendable, CustomStringConvertible {
    public private(set) var values: [String: AttributeValue]

    public init(_ values: [String: AttributeValue] = [:]) { self.values = values }

    public subscript(name: String) -> AttributeValue? {
        get { values[name] }
        set { values[name] = newValue }
    }

    public var isEmpty: Bool { values.isEmpty }
    public var names: [String] { values.keys.sorted() }

    public func int(_ name: String) -> Int? {
        switch values[name] {
        case .int(let value): return value
        case .bool(let value): return value ? 1 : 0
        default: return nil
        }
    }

    public func ints(_ name: String) -> [Int]? {
        switch values[name] {
        case .ints(let value): return value
        case .int(let value): return [value]
        default: return nil
        }
    }

    public func float(_ name: String) -> Float? {
        switch values[name] {
        case .float(let value): return value
        case .int(let value): return Float(value)
        default: return nil
        }
    }

    public func floats(_ name: String) -> [Float]? {
        switch values[name] {
        case .floats(let value): return value
        case .float(let value): return [value]
        default: return nil
        }
    }

    public func string(_ name: String) -> String? {
        if case .string(let value) = values[name] { return value }
        return nil
    }

    public func strings(_ name: String) -> [String]? {
        if case .strings(let value) = values[name] { return value }
        return nil
    }

    public func bool(_ name: String) -> Bool? {
        switch values[name] {
        case .bool(let value): return value
        case .int(let value): return value != 0
        default: return nil
        }
    }

    /// `{activation="relu", strides=[1,1]}` with names sorted, for the printer.
    public var description: String {
        "{" + names.map { "\($0)=\(values[$0]!.description)" }.joined(separator: ", ") + "}"
    }
}
