import KeelIR

/// A value written in the source. Words (`same`, `relu`, `block5_pool`) take their meaning
/// from where they are used: an input reference, an enumerated attribute value, or a name.
indirect enum ExpressionKind: Hashable, Sendable {
    case integer(Int)
    case number(Double)
    case string([StringPart])
    case word(String)
    case boolean(Bool)
    /// `(1, 1)` and `[1, 1]` alike.
    case list([Expression])
}

struct Expression: Hashable, Sendable {
    var kind: ExpressionKind
    var location: SourceLocation

    /// The expression as it would be written in a .keel file, for "did you mean" hints.
    var sourceText: String {
        switch kind {
        case .integer(let value): return "\(value)"
        case .number(let value): return "\(value)"
        case .boolean(let value): return "\(value)"
        case .word(let word): return word
        case .string(let parts):
            return "\"" + parts.map { part -> String in
                switch part {
                case .text(let text): return text
                case .variable(let name, _): return "{\(name)}"
                }
            }.joined() + "\""
        case .list(let elements): return "[" + elements.map(\.sourceText).joined(separator: ", ") + "]"
        }
    }
}

/// `label: value` or a positional `value`.
struct Argument: Hashable, Sendable {
    var label: String?
    var labelLocation: SourceLocation?
    var value: Expression
}

/// `NAME = callee(arguments)` or a bare `callee(arguments)`; the callee is a layer type or a
/// block, which only expansion can tell apart.
struct Invocation: Hashable, Sendable {
    /// A word or an interpolated string; nil for a bare block call.
    var resultName: Expression?
    var callee: String
    var calleeLocation: SourceLocation
    var arguments: [Argument]
    var frozen: Bool
    var location: SourceLocation
}

enum DimensionSyntax: Hashable, Sendable {
    case extent(Int)
    case symbol(String)
}

struct InputDeclaration: Hashable, Sendable {
    var name: String
    var location: SourceLocation
    var dtype: String
    var dtypeLocation: SourceLocation
    var dimensions: [(DimensionSyntax, SourceLocation)]
    var layout: (String, SourceLocation)?
    var preprocess: (String, SourceLocation)?

    static func == (lhs: InputDeclaration, rhs: InputDeclaration) -> Bool { lhs.location == rhs.location && lhs.name == rhs.name }
    func hash(into hasher: inout Hasher) { hasher.combine(name); hasher.combine(location) }
}

struct BlockDefinition: Hashable, Sendable {
    var name: String
    var location: SourceLocation
    var parameters: [(String, SourceLocation)]
    var body: [Statement]

    static func == (lhs: BlockDefinition, rhs: BlockDefinition) -> Bool { lhs.location == rhs.location && lhs.name == rhs.name }
    func hash(into hasher: inout Hasher) { hasher.combine(name); hasher.combine(location) }
}

struct RepeatLoop: Hashable, Sendable {
    var variable: String
    var location: SourceLocation
    var from: Expression
    var to: Expression
    var body: [Statement]
}

struct OutputDeclaration: Hashable, Sendable {
    var name: Expression
    /// The value the output reads; nil means the value named like the output.
    var value: Expression?
    var location: SourceLocation
    /// `labels: "imagenet.txt"`: class names for this output, relative to the file.
    var labels: String?
}

indirect enum Statement: Hashable, Sendable {
    case model(String, SourceLocation)
    case include(path: String, frozen: Bool, location: SourceLocation)
    case input(InputDeclaration)
    case block(BlockDefinition)
    case invocation(Invocation)
    case repeatLoop(RepeatLoop)
    case output(OutputDeclaration)
}

/// A parsed file: its statements in order.
struct SourceFile: Sendable {
    var path: String
    var statements: [Statement]
}
