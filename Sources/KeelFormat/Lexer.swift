import KeelIR

/// Splits .keel source into tokens. Line breaks end statements except inside `(...)` and
/// `[...]`, so long argument lists can span lines without continuation marks.
struct Lexer {
    private let characters: [Character]
    private let file: String
    private var index = 0
    private var line = 1
    private var column = 1
    /// Open `(` and `[` locations: line breaks inside them are not statement ends.
    private var openGroups: [SourceLocation] = []

    static let largestInteger = 1 << 31

    init(source: String, file: String) {
        self.characters = Array(source)
        self.file = file
    }

    static func tokenize(_ source: String, file: String) throws -> [Token] {
        var lexer = Lexer(source: source, file: file)
        var tokens: [Token] = []
        while true {
            let token = try lexer.next()
            tokens.append(token)
            if token.kind == .endOfFile { return tokens }
        }
    }

    private var here: SourceLocation { SourceLocation(file: file, line: line, column: column) }

    private func peek(_ offset: Int = 0) -> Character? {
        let position = index + offset
        return position < characters.count ? characters[position] : nil
    }

    private mutating func advance() {
        guard index < characters.count else { return }
        if characters[index] == "\n" || characters[index] == "\r\n" {
            line += 1
            column = 1
        } else {
            column += 1
        }
        index += 1
    }

    private mutating func next() throws -> Token {
        skipSpaceAndComments()
        let start = here
        guard let character = peek() else { return Token(kind: .endOfFile, location: start) }
        if character.isNewline || character == ";" {
            advance()
            return Token(kind: .newline, location: start)
        }
        if character.isLetter || character == "_" { return Token(kind: .identifier(identifier()), location: start) }
        if character.isASCII, character.isNumber { return Token(kind: try number(), location: start) }
        if character == "-", let following = peek(1), following.isASCII, following.isNumber {
            return Token(kind: try number(), location: start)
        }
        if character == "\"" { return Token(kind: .string(try string()), location: start) }
        if character == "'" { throw singleQuoted(at: start) }
        advance()
        switch character {
        case "(": openGroups.append(start); return Token(kind: .leftParen, location: start)
        case "[": openGroups.append(start); return Token(kind: .leftBracket, location: start)
        case ")", "]":
            _ = openGroups.popLast()
            return Token(kind: character == ")" ? .rightParen : .rightBracket, location: start)
        case "{": return Token(kind: .leftBrace, location: start)
        case "}": return Token(kind: .rightBrace, location: start)
        case ",": return Token(kind: .comma, location: start)
        case ":": return Token(kind: .colon, location: start)
        case "=": return Token(kind: .equals, location: start)
        case ".":
            if peek() == "." {
                advance()
                return Token(kind: .dotDot, location: start)
            }
            throw Diagnostic("unexpected '.'; ranges are written 'from..to'", at: start)
        default:
            throw Diagnostic("unexpected character '\(character)'", at: start)
        }
    }

    /// Skips blanks and `#` comments; line breaks inside open groups count as blanks.
    private mutating func skipSpaceAndComments() {
        while let character = peek() {
            if character == "#" {
                while let next = peek(), !next.isNewline { advance() }
            } else if character.isNewline && !openGroups.isEmpty {
                advance()
            } else if character.isWhitespace && !character.isNewline {
                advance()
            } else {
                return
            }
        }
    }

    private mutating func identifier() -> String {
        var text = ""
        while let character = peek(), character.isLetter || character.isNumber || character == "_" {
            text.append(character)
            advance()
        }
        return text
    }

    private mutating func number() throws -> TokenKind {
        let start = here
        var text = ""
        if peek() == "-" { text.append("-"); advance() }
        func digits(_ lexer: inout Lexer, _ text: inout String) {
            while let character = lexer.peek(), character.isASCII, character.isNumber || character == "_" {
                if character != "_" { text.append(character) }
                lexer.advance()
            }
        }
        digits(&self, &text)
        var isFloat = false
        // A '.' followed by a digit is a fraction; '..' is a range.
        if peek() == ".", let following = peek(1), following.isASCII, following.isNumber {
            isFloat = true
            text.append(".")
            advance()
            digits(&self, &text)
        }
        if let exponent = peek(), exponent == "e" || exponent == "E" {
            isFloat = true
            text.append("e")
            advance()
            if let sign = peek(), sign == "-" || sign == "+" { text.append(sign); advance() }
            digits(&self, &text)
        }
        if let trailing = peek(), trailing.isLetter || trailing == "_" {
            throw Diagnostic("malformed number '\(text)\(trailing)'", at: start)
        }
        if isFloat {
            guard let value = Double(text) else { throw Diagnostic("malformed number '\(text)'", at: start) }
            return .number(value)
        }
        // Extents and attributes stay far below this, so products of a few never overflow.
        guard let value = Int(text), value.magnitude <= Lexer.largestInteger else {
            throw Diagnostic("integer '\(text)' is too large (at most \(formatCount(Lexer.largestInteger)))", at: start)
        }
        return .integer(value)
    }

    /// Python's and JavaScript's 'text': .keel strings take double quotes.
    private mutating func singleQuoted(at start: SourceLocation) -> Diagnostic {
        advance()
        var text = ""
        while let character = peek(), character != "'", !character.isNewline {
            text.append(character)
            advance()
        }
        guard peek() == "'" else { return Diagnostic("unexpected character \"'\"; strings take double quotes", at: start) }
        return Diagnostic("strings take double quotes in .keel files; did you mean \"\(text)\"?", at: start)
    }

    /// A double-quoted string on one line; `{name}` interpolates, `\{` `\"` `\\` escape.
    private mutating func string() throws -> [StringPart] {
        let start = here
        advance()
        var parts: [StringPart] = []
        var text = ""
        while true {
            guard let character = peek(), !character.isNewline else {
                throw Diagnostic("unterminated string", at: start)
            }
            advance()
            switch character {
            case "\"":
                if !text.isEmpty || parts.isEmpty { parts.append(.text(text)) }
                return parts
            case "\\":
                guard let escaped = peek(), !escaped.isNewline else { throw Diagnostic("unterminated string", at: start) }
                advance()
                switch escaped {
                case "n": text.append("\n")
                case "t": text.append("\t")
                case "\"", "\\", "{", "}": text.append(escaped)
                default: throw Diagnostic("unknown escape '\\\(escaped)' in string", at: start)
                }
            case "{":
                let variableStart = here
                var name = ""
                while let next = peek(), next.isLetter || next.isNumber || next == "_" {
                    name.append(next)
                    advance()
                }
                guard !name.isEmpty, peek() == "}" else {
                    throw Diagnostic("expected a name and '}' after '{' in string; write '\\{' for a brace", at: variableStart)
                }
                advance()
                if !text.isEmpty { parts.append(.text(text)) }
                text = ""
                parts.append(.variable(name, variableStart))
            default:
                text.append(character)
            }
        }
    }
}
