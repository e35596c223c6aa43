import KeelIR

/// One piece of a string literal: plain text, or a `{name}` to interpolate when blocks expand.
enum StringPart: Hashable, Sendable {
    case text(String)
    case variable(String, SourceLocation)
}

/// The lexical units of a .keel file. Keywords are ordinary identifiers that the parser
/// recognises by position, so layers may be named `dense` or `input` as Keras names them.
enum TokenKind: Hashable, Sendable {
    case identifier(String)
    case integer(Int)
    case number(Double)
    case string([StringPart])
    case leftParen, rightParen, leftBracket, rightBracket, leftBrace, rightBrace
    case comma, colon, equals, dotDot
    /// Ends a statement (a line break outside parentheses and brackets, or `;`).
    case newline
    case endOfFile

    /// How the token reads in "expected X, found Y" messages.
    var display: String {
        switch self {
        case .identifier(let name): return "'\(name)'"
        case .integer(let value): return "'\(value)'"
        case .number(let value): return "'\(value)'"
        case .string: return "a string"
        case .leftParen: return "'('"
        case .rightParen: return "')'"
        case .leftBracket: return "'['"
        case .rightBracket: return "']'"
        case .leftBrace: return "'{'"
        case .rightBrace: return "'}'"
        case .comma: return "','"
        case .colon: return "':'"
        case .equals: return "'='"
        case .dotDot: return "'..'"
        case .newline: return "end of line"
        case .endOfFile: return "end of file"
        }
    }
}

struct Token: Hashable, Sendable {
    var kind: TokenKind
    var location: SourceLocation
}
