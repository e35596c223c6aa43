import Foundation

/// Reads the IR text form `printIR` writes (spec/ir.md), so pass tests are IR text in, IR text
/// out. `parseIR(printIR(g))` gives `g` back except what the text does not carry: node names
/// (a node is named after its first output) and constant values. A constant line may add
/// values for tests that need them: `const @b: f32[2] bias = [0.5, -1.0]`.
/// Errors are `Diagnostic`s at `file:line:column`.
public func parseIR(_ text: String, file: String = "ir") throws -> Graph {
    var graph = Graph(name: "")
    for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        var line = IRLineReader(text: String(rawLine), file: file, line: index + 1)
        line.skipSpaces()
        if line.atEnd || line.peek == "#" { continue }
        let lineStart = line.position
        let keyword = line.word()
        switch keyword {
        case "graph":
            line.skipSpaces()
            graph.name = line.rest()
        case "input":
            let name = try line.value(sigil: "%")
            try line.expect(":")
            var input = GraphInput(name: name, type: try line.type())
            line.skipSpaces()
            if !line.atEnd, line.peek != "p" { input.layout = Layout(rawValue: line.word()) }
            line.skipSpaces()
            if line.consume("preprocess=") { input.preprocess = try line.string() }
            graph.inputs.append(input)
            graph.valueTypes[name] = input.type
        case "const":
            let name = try line.value(sigil: "@")
            try line.expect(":")
            let type = try line.type()
            line.skipSpaces()
            guard let role = ParameterRole(rawValue: line.word()) else { throw line.error("expected a role (kernel, bias, literal...)") }
            line.skipSpaces()
            let frozen = line.consume("frozen")
            var constant = Constant(name: name, type: type, role: role, trainable: !frozen)
            line.skipSpaces()
            if line.consume("=") {
                guard let extents = type.shape.knownExtents else { throw line.error("values need a known shape") }
                line.skipSpaces()
                let valuesStart = line.position
                let values = try line.attributeValue()
                let numbers: [Double]
                switch values {
                case .floats(let list): numbers = list.map(Double.init)
                case .ints(let list): numbers = list.map(Double.init)
                case .float(let value): numbers = [Double(value)]
                case .int(let value): numbers = [Double(value)]
                default: throw line.error("expected a list of numbers")
                }
                guard numbers.count == extents.reduce(1, *) else {
                    throw line.error("\(numbers.count) values for shape \(type.shape)", at: valuesStart)
                }
                constant.data = TensorData(referenceValues: numbers, dtype: type.dtype, shape: extents)
            }
            graph.constants[name] = constant
        case "output":
            line.skipSpaces()
            let name = line.word()
            try line.expect("=")
            graph.outputs.append(GraphOutput(name: name, value: try line.anyValue()))
        case "":
            // `%a, %b = op(...) {...} : types  # locations`
            var outputs = [try line.value(sigil: "%")]
            while line.consume(",") { outputs.append(try line.value(sigil: "%")) }
            try line.expect("=")
            line.skipSpaces()
            let opStart = line.position
            let opName = line.word()
            guard let op = OpKind(rawValue: opName) else {
                throw line.error("unknown op '\(opName)'\(suggestion(for: opName, among: OpKind.allCases.map(\.rawValue)))", at: opStart)
            }
            try line.expect("(")
            var inputs: [String] = []
            line.skipSpaces()
            if !line.consume(")") {
                repeat {
                    line.skipSpaces()
                    inputs.append(line.consume("_") ? "" : try line.anyValue())
                    line.skipSpaces()
                } while line.consume(",")
                try line.expect(")")
            }
            var attributes = Attributes()
            line.skipSpaces()
            if line.consume("{") {
                line.skipSpaces()
                if !line.consume("}") {
                    repeat {
                        line.skipSpaces()
                        let name = line.word()
                        try line.expect("=")
                        attributes[name] = try line.attributeValue()
                        line.skipSpaces()
                    } while line.consume(",")
                    try line.expect("}")
                }
            }
            try line.expect(":")
            var types: [TensorType?] = []
            repeat {
                line.skipSpaces()
                types.append(line.consume("?") ? nil : try line.type())
                line.skipSpaces()
            } while line.consume(",")
            guard types.count == outputs.count else { throw line.error("\(outputs.count) outputs but \(types.count) types") }
            for (output, type) in zip(outputs, types) { graph.valueTypes[output] = type }
            var locations: [SourceLocation] = []
            line.skipSpaces()
            if line.consume("#") {
                for part in line.rest().split(separator: ",") {
                    locations.append(parsedLocation(part.trimmingCharacters(in: .whitespaces)))
                }
            }
            graph.nodes.append(Node(name: outputs[0], op: op, inputs: inputs, outputs: outputs,
                                    attributes: attributes, locations: locations))
            continue
        default:
            throw line.error("expected 'graph', 'input', 'const', 'output' or a node line, found '\(keyword)'", at: lineStart)
        }
        line.skipSpaces()
        guard line.atEnd else { throw line.error("unexpected '\(line.rest())'") }
    }
    return graph
}

/// `tiny.keel:3:5`, or a named place without line numbers (an ONNX node).
private func parsedLocation(_ text: String) -> SourceLocation {
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    if parts.count >= 3, let line = Int(parts[parts.count - 2]), let column = Int(parts[parts.count - 1]), line > 0 {
        return SourceLocation(file: parts.dropLast(2).joined(separator: ":"), line: line, column: column)
    }
    return SourceLocation(file: text, line: 0, column: 0)
}

/// A cursor over one line of IR text.
private struct IRLineReader {
    let characters: [Character]
    let file: String
    let line: Int
    var position = 0

    init(text: String, file: String, line: Int) {
        characters = Array(text)
        self.file = file
        self.line = line
    }

    var atEnd: Bool { position >= characters.count }
    var peek: Character? { atEnd ? nil : characters[position] }

    /// A diagnostic at `start` (a token's first character), or at the cursor.
    func error(_ message: String, at start: Int? = nil) -> Diagnostic {
        Diagnostic(message, at: SourceLocation(file: file, line: line, column: (start ?? position) + 1))
    }

    mutating func skipSpaces() {
        while peek == " " || peek == "\t" { position += 1 }
    }

    mutating func rest() -> String {
        defer { position = characters.count }
        return String(characters[position...])
    }

    mutating func consume(_ text: String) -> Bool {
        let expected = Array(text)
        guard position + expected.count <= characters.count,
              Array(characters[position..<(position + expected.count)]) == expected else { return false }
        position += expected.count
        return true
    }

    mutating func expect(_ text: String) throws {
        skipSpaces()
        guard consume(text) else { throw error("expected '\(text)'") }
    }

    /// Letters, digits and `_`; empty when none.
    mutating func word() -> String {
        let start = position
        while let character = peek, character.isLetter || character.isNumber || character == "_" { position += 1 }
        return String(characters[start..<position])
    }

    /// A value name after its sigil: up to a separator (space, comma, parenthesis, colon).
    mutating func value(sigil: Character) throws -> String {
        skipSpaces()
        guard peek == sigil else { throw error("expected '\(sigil)' and a value name") }
        position += 1
        let start = position
        while let character = peek, !" ,():{}".contains(character) { position += 1 }
        guard position > start else { throw error("expected a value name after '\(sigil)'") }
        return String(characters[start..<position])
    }

    mutating func anyValue() throws -> String {
        skipSpaces()
        return try value(sigil: peek == "@" ? "@" : "%")
    }

    /// `f32[N,8,8,3]`.
    mutating func type() throws -> TensorType {
        skipSpaces()
        let start = position
        let spelling = word()
        guard let dtype = DType(rawValue: spelling) else { throw error("unknown dtype '\(spelling)'", at: start) }
        try expect("[")
        var dims: [Dim] = []
        if !consume("]") {
            repeat {
                skipSpaces()
                let text = word()
                guard !text.isEmpty else { throw error("expected a dimension") }
                // A multiple of a symbol as the printer writes it: `12·N`.
                if let coefficient = Int(text), consume("·") {
                    let symbol = word()
                    guard !symbol.isEmpty, Int(symbol) == nil else { throw error("expected a symbol after '\(text)·'") }
                    dims.append(coefficient == 1 ? .symbol(symbol) : .scaled(coefficient, symbol))
                } else {
                    dims.append(Int(text).map(Dim.known) ?? .symbol(text))
                }
                skipSpaces()
            } while consume(",")
            try expect("]")
        }
        return TensorType(dtype, Shape(dims))
    }

    mutating func string() throws -> String {
        guard consume("\"") else { throw error("expected a string") }
        let start = position
        while let character = peek, character != "\"" { position += 1 }
        guard !atEnd else { throw error("unterminated string") }
        defer { position += 1 }
        return String(characters[start..<position])
    }

    /// A number as the printer writes it: integers without a point, floats with one (or inf/nan).
    mutating func number() throws -> AttributeValue {
        let start = position
        while let character = peek, character.isNumber || "+-.eEinfa".contains(character) { position += 1 }
        let text = String(characters[start..<position])
        if let integer = Int(text) { return .int(integer) }
        guard let float = Float(text) else { throw error("expected a number, found '\(text)'") }
        return .float(float)
    }

    mutating func attributeValue() throws -> AttributeValue {
        skipSpaces()
        if peek == "\"" { return .string(try string()) }
        if consume("true") { return .bool(true) }
        if consume("false") { return .bool(false) }
        guard consume("[") else { return try number() }
        skipSpaces()
        if consume("]") { return .ints([]) }
        if peek == "\"" {
            var strings: [String] = []
            repeat {
                skipSpaces()
                strings.append(try string())
                skipSpaces()
            } while consume(",")
            try expect("]")
            return .strings(strings)
        }
        var numbers: [AttributeValue] = []
        repeat {
            skipSpaces()
            numbers.append(try number())
            skipSpaces()
        } while consume(",")
        try expect("]")
        let integers = numbers.compactMap { value -> Int? in if case .int(let integer) = value { return integer } else { return nil } }
        if integers.count == numbers.count { return .ints(integers) }
        return .floats(numbers.map { value in
            switch value {
            case .int(let integer): return Float(integer)
            case .float(let float): return float
            default: return 0
            }
        })
    }
}
