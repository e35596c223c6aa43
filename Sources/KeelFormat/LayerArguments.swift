import KeelIR

/// What kind of value a layer attribute takes; checking happens before any shape work so a
/// typo'd or mistyped attribute is reported at its own position.
enum AttributeType: Hashable, Sendable {
    case integer
    case number
    case boolean
    /// An integer or a pair of integers: `kernel_size: 3` or `kernel_size: (3, 3)`.
    case pair
    /// A list of integers: `target_shape: (-1, 768)`.
    case integers
    /// One word from a fixed set: `padding: same`.
    case choice([String])

    var description: String {
        switch self {
        case .integer: return "an integer"
        case .number: return "a number"
        case .boolean: return "true or false"
        case .pair: return "an integer or a pair (a, b)"
        case .integers: return "a list of integers"
        case .choice(let words): return "one of " + words.joined(separator: ", ")
        }
    }
}

/// A checked attribute value.
enum LayerValue: Hashable, Sendable {
    case integer(Int)
    case number(Double)
    case boolean(Bool)
    case integers([Int])
    case word(String)
}

/// A layer attribute as users write it, with its Keras default (nil when required or when
/// absence has its own meaning, as for `input_dim`).
struct LayerAttribute: Sendable {
    var name: String
    var type: AttributeType
    var defaultValue: LayerValue?
    var required: Bool

    init(_ name: String, _ type: AttributeType, default defaultValue: LayerValue? = nil, required: Bool = false) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.required = required
    }
}

/// The checked attributes of one layer, with defaults filled in.
struct LayerArguments {
    private var values: [String: LayerValue]

    /// Checks every written attribute against the layer type: known name, right value type,
    /// given once; then requires the required ones. Positional literals fill `positional` in order.
    init(_ layer: LayerInstance, type: LayerType) throws {
        values = [:]
        var positionalIndex = 0
        var written: Set<String> = []
        let names = type.attributes.map(\.name)
        let what = "\(layer.type) '\(layer.name)'"
        for argument in layer.arguments {
            let name: String
            if let label = argument.label {
                guard names.contains(label) else {
                    let hint = suggestion(for: label, among: names)
                    throw Diagnostic("\(layer.type) has no attribute '\(label)'\(hint.isEmpty && !names.isEmpty ? "; it takes " + names.joined(separator: ", ") : hint)",
                                     at: argument.labelLocation ?? argument.value.location).noting(layer.callSites)
                }
                name = label
            } else {
                guard positionalIndex < type.positional.count else {
                    let message = type.positional.isEmpty
                        ? "\(what) takes no positional values; name the attribute ('name: value')"
                        : "\(what) takes at most \(type.positional.count) positional value(s) (\(type.positional.joined(separator: ", ")))"
                    throw Diagnostic(message, at: argument.value.location).noting(layer.callSites)
                }
                name = type.positional[positionalIndex]
                positionalIndex += 1
            }
            guard !written.contains(name) else {
                throw Diagnostic("attribute '\(name)' of \(what) is given twice", at: argument.labelLocation ?? argument.value.location)
                    .noting(layer.callSites)
            }
            written.insert(name)
            guard let attribute = type.attributes.first(where: { $0.name == name }) else { continue }
            guard let value = LayerArguments.convert(argument.value, to: attribute.type) else {
                var hint = ""
                if case .choice(let words) = attribute.type, case .word(let word) = argument.value.kind {
                    hint = name == "activation" && LayerCatalog.names.contains(word)
                        ? "; \(word) cannot be fused here: add a separate layer 'NAME = \(word)()' after it"
                        : suggestion(for: word, among: words)
                }
                throw Diagnostic("attribute '\(name)' of \(what) expects \(attribute.type.description), got \(LayerArguments.describe(argument.value))\(hint)",
                                 at: argument.value.location).noting(layer.callSites)
            }
            if attribute.type == .pair, case .integers(let pair) = value, pair.contains(where: { $0 <= 0 }) {
                throw Diagnostic("attribute '\(name)' of \(what) must be positive, got \(AttributeValue.ints(pair))", at: argument.value.location)
                    .noting(layer.callSites)
            }
            values[name] = value
        }
        for attribute in type.attributes where values[attribute.name] == nil {
            if attribute.required {
                throw Diagnostic("\(what) needs attribute '\(attribute.name)' (\(attribute.type.description))", at: layer.location)
                    .noting(layer.callSites)
            }
            if let defaultValue = attribute.defaultValue { values[attribute.name] = defaultValue }
        }
    }

    func has(_ name: String) -> Bool { values[name] != nil }

    func integer(_ name: String) -> Int {
        if case .integer(let value)? = values[name] { return value }
        return 0
    }

    func optionalInteger(_ name: String) -> Int? {
        if case .integer(let value)? = values[name] { return value }
        return nil
    }

    func number(_ name: String) -> Double {
        switch values[name] {
        case .number(let value)?: return value
        case .integer(let value)?: return Double(value)
        default: return 0
        }
    }

    func boolean(_ name: String) -> Bool {
        if case .boolean(let value)? = values[name] { return value }
        return false
    }

    func integers(_ name: String) -> [Int] {
        if case .integers(let value)? = values[name] { return value }
        return []
    }

    func word(_ name: String) -> String {
        if case .word(let value)? = values[name] { return value }
        return ""
    }

    private static func convert(_ expression: Expression, to type: AttributeType) -> LayerValue? {
        switch (type, expression.kind) {
        case (.integer, .integer(let value)): return .integer(value)
        case (.number, .integer(let value)): return .number(Double(value))
        case (.number, .number(let value)): return .number(value)
        case (.boolean, .boolean(let value)): return .boolean(value)
        case (.pair, .integer(let value)): return .integers([value, value])
        case (.pair, .list(let elements)):
            let values = elements.compactMap { element -> Int? in if case .integer(let value) = element.kind { return value } else { return nil } }
            return values.count == 2 && elements.count == 2 ? .integers(values) : nil
        case (.integers, .integer(let value)): return .integers([value])
        case (.integers, .list(let elements)):
            let values = elements.compactMap { element -> Int? in if case .integer(let value) = element.kind { return value } else { return nil } }
            return values.count == elements.count ? .integers(values) : nil
        case (.choice(let words), .word(let word)):
            return words.contains(word) ? .word(word) : nil
        case (.choice(let words), .string(let parts)):
            guard parts.count == 1, case .text(let word) = parts[0] else { return nil }
            return words.contains(word) ? .word(word) : nil
        default: return nil
        }
    }

    private static func describe(_ expression: Expression) -> String {
        switch expression.kind {
        case .integer(let value): return "\(value)"
        case .number(let value): return "\(value)"
        case .boolean(let value): return "\(value)"
        case .word(let word): return "'\(word)'"
        case .string(let parts):
            let text = parts.map { if case .text(let text) = $0 { return text } else { return "" } }.joined()
            return "\"\(text)\""
        case .list(let elements): return "a list of \(elements.count)"
        }
    }
}
