/// Where something was written: a .keel file position or an ONNX node.
/// Fused nodes keep all the locations they came from, so errors after optimisation still point at the user's line.
public struct SourceLocation: Hashable, Sendable, CustomStringConvertible, Comparable {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// A location that names an ONNX node or another place without line numbers (line 0).
    public static func named(_ file: String, _ what: String = "") -> SourceLocation {
        SourceLocation(file: what.isEmpty ? file : "\(file)(\(what))", line: 0, column: 0)
    }

    public var description: String { line > 0 ? "\(file):\(line):\(column)" : file }

    public static func < (lhs: SourceLocation, rhs: SourceLocation) -> Bool {
        (lhs.file, lhs.line, lhs.column) < (rhs.file, rhs.line, rhs.column)
    }
}
