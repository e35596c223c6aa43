import Foundation
import KeelIR

/// Recursive-descent parser for the grammar in spec/graph-format.md. Keywords are recognised
/// by position, so `dense = dense(256)` and `input = relu()` are ordinary layer statements.
struct Parser {
    private let tokens: [Token]
    private let file: String
    private var position = 0
    /// Open lists and loop bodies; bounded so hostile input cannot exhaust the stack.
    private var depth = 0
    private static let maximumDepth = 64

    init(tokens: [Token], file: String) {
        self.tokens = tokens
        self.file = file
    }

    static func parse(source: String, path: String) throws -> SourceFile {
        var parser = Parser(tokens: try Lexer.tokenize(source, file: path), file: path)
        return SourceFile(path: path, statements: try parser.statements(until: nil))
    }

    // MARK: Token access

    private var current: Token { tokens[min(position, tokens.count - 1)] }
    private var next: Token { tokens[min(position + 1, tokens.count - 1)] }

    private mutating func advance() { if position < tokens.count - 1 { position += 1 } }

    private mutating func skipNewlines() { while current.kind == .newline { advance() } }

    private func unexpected(_ expected: String) -> Diagnostic {
        Diagnostic("expected \(expected), found \(current.kind.display)", at: current.location)
    }

    private mutating func expect(_ kind: TokenKind, _ expected: String) throws -> SourceLocation {
        guard current.kind == kind else { throw unexpected(expected) }
        let location = current.location
        advance()
        return location
    }

    private mutating func identifier(_ expected: String) throws -> (String, SourceLocation) {
        guard case .identifier(let name) = current.kind else { throw unexpected(expected) }
        let location = current.location
        advance()
        return (name, location)
    }

    private func isKeyword(_ word: String) -> Bool {
        if case .identifier(word) = current.kind { return true }
        return false
    }

    /// The group-closing token; at the end of the file, points at the unclosed opener.
    private mutating func close(_ kind: TokenKind, opened location: SourceLocation, _ what: String) throws {
        if current.kind == .endOfFile {
            throw Diagnostic("unterminated \(what): missing \(kind.display)", at: location)
        }
        _ = try expect(kind, kind.display)
    }

    /// After a list element: a ',' or the closer; the end of the file reports the unclosed opener.
    private mutating func separator(_ closer: TokenKind, opened location: SourceLocation, _ what: String) throws {
        if current.kind == .comma { advance(); return }
        if current.kind == closer { return }
        if current.kind == .endOfFile { try close(closer, opened: location, what) }
        throw unexpected("',' or \(closer.display) in the \(what)")
    }

    private mutating func enter(at location: SourceLocation) throws {
        depth += 1
        if depth > Parser.maximumDepth { throw Diagnostic("nesting is deeper than \(Parser.maximumDepth) levels", at: location) }
    }

    // MARK: Statements

    /// Statements until `}` (inside a block or loop body) or the end of the file.
    private mutating func statements(until closer: TokenKind?) throws -> [Statement] {
        var result: [Statement] = []
        while true {
            skipNewlines()
            if current.kind == .endOfFile || (closer != nil && current.kind == closer) { return result }
            result.append(try statement(nested: closer != nil))
            guard current.kind == .newline || current.kind == .endOfFile || (closer != nil && current.kind == closer) else {
                throw unexpected("end of line after statement")
            }
        }
    }

    private mutating func statement(nested: Bool) throws -> Statement {
        let startsKeyword = next.kind != .equals && next.kind != .leftParen
        if startsKeyword, case .identifier(let word) = current.kind {
            switch word {
            case "model": return try modelHeader()
            case "include": return try include(frozen: false, at: current.location)
            case "input": return .input(try inputDeclaration())
            case "block":
                if nested { throw Diagnostic("blocks are defined at the top level of a file, not inside another block or loop", at: current.location) }
                return .block(try blockDefinition())
            case "repeat": return .repeatLoop(try repeatLoop())
            case "output": return .output(try outputDeclaration())
            case "frozen":
                let location = current.location
                advance()
                if isKeyword("include") && next.kind != .equals && next.kind != .leftParen { return try include(frozen: true, at: location) }
                return .invocation(try invocation(frozen: true, at: location))
            default: break
            }
        }
        return .invocation(try invocation(frozen: false, at: current.location))
    }

    private mutating func modelHeader() throws -> Statement {
        advance()
        let (name, location) = try identifier("a model name after 'model'")
        return .model(name, location)
    }

    private mutating func include(frozen: Bool, at location: SourceLocation) throws -> Statement {
        advance()
        guard case .string(let parts) = current.kind else { throw unexpected("a quoted file path after 'include'") }
        guard parts.allSatisfy({ if case .text = $0 { return true } else { return false } }) else {
            throw Diagnostic("include paths cannot interpolate names", at: current.location)
        }
        let path = parts.map { if case .text(let text) = $0 { return text } else { return "" } }.joined()
        advance()
        return .include(path: path, frozen: frozen, location: location)
    }

    /// `input NAME: f32[N, 224, 224, 3] [nhwc|nchw] [preprocess: PRESET]`
    private mutating func inputDeclaration() throws -> InputDeclaration {
        advance()
        let (name, location) = try identifier("an input name after 'input'")
        _ = try expect(.colon, "':' and a type after the input name")
        let (dtype, dtypeLocation) = try identifier("an element type such as 'f32'")
        let open = try expect(.leftBracket, "'[' and the dimensions after the element type")
        var dimensions: [(DimensionSyntax, SourceLocation)] = []
        while current.kind != .rightBracket {
            switch current.kind {
            case .integer(let extent):
                guard extent > 0 else { throw Diagnostic("bad dimension \(extent): extents must be positive", at: current.location) }
                dimensions.append((.extent(extent), current.location))
            case .identifier(let symbol): dimensions.append((.symbol(symbol), current.location))
            case .endOfFile: try close(.rightBracket, opened: open, "shape")
            default: throw Diagnostic("bad dimension \(current.kind.display): write a positive integer or a symbol such as N", at: current.location)
            }
            advance()
            try separator(.rightBracket, opened: open, "shape")
        }
        advance()
        if dimensions.isEmpty { throw Diagnostic("input '\(name)' needs at least one dimension", at: open) }
        var declaration = InputDeclaration(name: name, location: location, dtype: dtype, dtypeLocation: dtypeLocation, dimensions: dimensions)
        while case .identifier(let word) = current.kind {
            let wordLocation = current.location
            advance()
            if current.kind == .colon {
                advance()
                guard word == "preprocess" else {
                    throw Diagnostic("unknown input option '\(word)'\(suggestion(for: word, among: ["preprocess"]))", at: wordLocation)
                }
                let (preset, presetLocation) = try identifier("a preprocessing preset such as keras_vgg16 or torch")
                declaration.preprocess = (preset, presetLocation)
            } else {
                declaration.layout = (word, wordLocation)
            }
            if current.kind == .comma { advance() }
        }
        return declaration
    }

    /// `block NAME(param, ...) { statements }`
    private mutating func blockDefinition() throws -> BlockDefinition {
        advance()
        let (name, location) = try identifier("a block name after 'block'")
        let open = try expect(.leftParen, "'(' and the block's parameters")
        var parameters: [(String, SourceLocation)] = []
        while current.kind != .rightParen {
            if current.kind == .endOfFile { try close(.rightParen, opened: open, "parameter list") }
            parameters.append(try identifier("a parameter name"))
            try separator(.rightParen, opened: open, "parameter list")
        }
        advance()
        let body = try braced("block")
        return BlockDefinition(name: name, location: location, parameters: parameters, body: body)
    }

    /// `repeat i in 1..convs { statements }` (the range includes both ends).
    private mutating func repeatLoop() throws -> RepeatLoop {
        let location = current.location
        advance()
        let (variable, _) = try identifier("a loop variable after 'repeat'")
        guard isKeyword("in") else { throw unexpected("'in' after the loop variable") }
        advance()
        let from = try expression()
        _ = try expect(.dotDot, "'..' between the loop bounds")
        let to = try expression()
        let body = try braced("repeat")
        return RepeatLoop(variable: variable, location: location, from: from, to: to, body: body)
    }

    private mutating func braced(_ what: String) throws -> [Statement] {
        let open = try expect(.leftBrace, "'{' to open the \(what) body")
        try enter(at: open)
        defer { depth -= 1 }
        let body = try statements(until: .rightBrace)
        try close(.rightBrace, opened: open, what)
        return body
    }

    /// `output NAME`, `output NAME = VALUE`, either followed by `labels: "file.txt"`.
    private mutating func outputDeclaration() throws -> OutputDeclaration {
        let location = current.location
        advance()
        let name = try nameExpression("an output name after 'output'")
        var value: Expression?
        if current.kind == .equals {
            advance()
            value = try nameExpression("the layer the output reads")
        }
        var labels: String?
        if case .identifier(let word) = current.kind {
            let wordLocation = current.location
            guard word == "labels" else {
                throw Diagnostic("unknown output option '\(word)'\(suggestion(for: word, among: ["labels"]))", at: wordLocation)
            }
            advance()
            guard current.kind == .colon else { throw unexpected("':' after 'labels'") }
            advance()
            guard case .string(let parts) = current.kind, case .text(let path)? = parts.first, parts.count == 1 else {
                throw unexpected("a labels file path in double quotes")
            }
            advance()
            labels = URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: location.file).deletingLastPathComponent()).path
        }
        return OutputDeclaration(name: name, value: value, location: location, labels: labels)
    }

    private mutating func nameExpression(_ expected: String) throws -> Expression {
        switch current.kind {
        case .identifier(let word):
            defer { advance() }
            return Expression(kind: .word(word), location: current.location)
        case .string(let parts):
            defer { advance() }
            return Expression(kind: .string(parts), location: current.location)
        default: throw unexpected(expected)
        }
    }

    /// `NAME = callee(args)` or `callee(args)`.
    private mutating func invocation(frozen: Bool, at location: SourceLocation) throws -> Invocation {
        var resultName: Expression?
        if next.kind == .equals {
            resultName = try nameExpression("a layer name")
            advance()
        } else if case .string = current.kind {
            throw unexpected("'=' after the layer name")
        }
        let (callee, calleeLocation) = try identifier(resultName == nil ? "a statement (a layer 'NAME = type(...)', a block call, 'input', 'output', 'include' or 'block')" : "a layer type after '='")
        if resultName == nil, case .identifier = current.kind {
            throw unexpected("'=' or '(' after '\(callee)'")
        }
        let open = try expect(.leftParen, "'(' after '\(callee)'")
        var arguments: [Argument] = []
        while current.kind != .rightParen {
            if current.kind == .endOfFile { try close(.rightParen, opened: open, "argument list") }
            arguments.append(try argument())
            try separator(.rightParen, opened: open, "argument list")
        }
        advance()
        return Invocation(resultName: resultName, callee: callee, calleeLocation: calleeLocation, arguments: arguments,
                          frozen: frozen, location: resultName?.location ?? location)
    }

    private mutating func argument() throws -> Argument {
        if case .identifier(let label) = current.kind, next.kind == .equals {
            // Python's keyword syntax, `units=5`: say how .keel writes it.
            let location = current.location
            advance()
            advance()
            let value = try expression()
            throw Diagnostic("arguments are labelled with ':' in .keel files; did you mean '\(label): \(value.sourceText)'?", at: location)
        }
        if case .identifier(let label) = current.kind, next.kind == .colon {
            let labelLocation = current.location
            advance()
            advance()
            return Argument(label: label, labelLocation: labelLocation, value: try expression())
        }
        return Argument(label: nil, labelLocation: nil, value: try expression())
    }

    private mutating func expression() throws -> Expression {
        let location = current.location
        switch current.kind {
        case .integer(let value): advance(); return Expression(kind: .integer(value), location: location)
        case .number(let value): advance(); return Expression(kind: .number(value), location: location)
        case .string(let parts): advance(); return Expression(kind: .string(parts), location: location)
        case .identifier("true"): advance(); return Expression(kind: .boolean(true), location: location)
        case .identifier("false"): advance(); return Expression(kind: .boolean(false), location: location)
        case .identifier(let word): advance(); return Expression(kind: .word(word), location: location)
        case .leftParen, .leftBracket:
            try enter(at: location)
            defer { depth -= 1 }
            let closer: TokenKind = current.kind == .leftParen ? .rightParen : .rightBracket
            advance()
            var elements: [Expression] = []
            while current.kind != closer {
                if current.kind == .endOfFile { try close(closer, opened: location, "list") }
                elements.append(try expression())
                try separator(closer, opened: location, "list")
            }
            advance()
            return Expression(kind: .list(elements), location: location)
        default:
            throw unexpected("a value")
        }
    }
}
