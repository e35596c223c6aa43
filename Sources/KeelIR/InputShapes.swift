import Foundation

/// Extents given for a model's inputs before it is loaded, fixing what the file leaves symbolic.
///
/// An ONNX model exported with a free height and width (PyTorch's `dynamic_axes`, or a Keras
/// backbone built with `include_top=False` and no input size, which tf2onnx writes as
/// `[?,?,?,3]`) has convolutions whose output sizes depend on them, and Keel plans every layer for
/// known sizes. Given the sizes, the loader substitutes them wherever the symbols occur in the
/// inputs' shapes before it infers the rest. An axis given as `?` or a name keeps the model's
/// dimension, so the batch can stay symbolic and be bound per run.
public struct InputShapes: Sendable, Equatable {
    /// One input's given extents: nil `name` for a model's only input, nil extents keep the model's.
    public struct Entry: Sendable, Equatable {
        public var name: String?
        public var extents: [Int?]

        public init(name: String?, extents: [Int?]) {
            self.name = name
            self.extents = extents
        }
    }

    public var entries: [Entry]
    /// Whether an entry that cannot apply (an unknown input, another rank, a known dimension given
    /// another size) is an error. Shapes read from the tensors a run is given leave those to the
    /// run, which reports them when it binds its inputs; shapes a user writes are checked here.
    public var isStrict: Bool

    public init(_ entries: [Entry] = [], isStrict: Bool = true) {
        self.entries = entries
        self.isStrict = isStrict
    }

    /// The shapes of the tensors a run will be given, fixing every symbol but the leading (batch) axis's.
    public static func ofRunInputs(_ shapes: [(name: String?, extents: [Int])]) -> InputShapes {
        InputShapes(shapes.map { Entry(name: $0.name, extents: [nil] + $0.extents.dropFirst().map(Optional.some)) },
                    isStrict: false)
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// Parses `1x3x320x256`, `x=Nx320x256x3` or `x=?,3,224,224`: extents separated by `x` or
    /// commas, `?` or a name for an axis left as the model declares it, after `name=` for a model
    /// with several inputs.
    public static func parsing(_ arguments: [String]) throws -> InputShapes {
        InputShapes(try arguments.map(parseEntry))
    }

    private static func parseEntry(_ text: String) throws -> Entry {
        var name: String?
        var body = Substring(text)
        if let equals = body.lastIndex(of: "=") {
            name = String(body[..<equals])
            body = body[body.index(after: equals)...]
            if name?.isEmpty == true { throw InputShapeError.syntax(text) }
        }
        let parts = body.split(separator: body.contains(",") ? "," : "x", omittingEmptySubsequences: false)
        let extents: [Int?] = try parts.map { part in
            let axis = part.trimmingCharacters(in: .whitespaces)
            if let extent = Int(axis) {
                guard extent > 0 else { throw InputShapeError.syntax(text) }
                return extent
            }
            guard axis == "?" || (axis.first?.isLetter == true && axis.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" })
            else { throw InputShapeError.syntax(text) }
            return nil
        }
        guard !extents.isEmpty else { throw InputShapeError.syntax(text) }
        return Entry(name: name, extents: extents)
    }

    /// The value of every symbol the given extents fix, checked against the inputs' declared shapes:
    /// the rank must match, a known dimension must equal what is given, and a symbol must get one
    /// value wherever it occurs.
    public func symbolValues(for inputs: [(name: String, shape: Shape)]) throws -> [String: Int] {
        var values: [String: Int] = [:]
        for entry in entries {
            do {
                values = try fixing(entry, inputs: inputs, after: values)
            } catch where !isStrict {
                continue
            }
        }
        return values
    }

    /// `values` with the symbols `entry` fixes added, or an error and nothing added.
    private func fixing(_ entry: Entry, inputs: [(name: String, shape: Shape)], after values: [String: Int]) throws
        -> [String: Int] {
        let available = inputs.map(\.name)
        let input: (name: String, shape: Shape)
        if let name = entry.name {
            guard let named = inputs.first(where: { $0.name == name }) else {
                throw InputShapeError.unknownInput(name, available: available)
            }
            input = named
        } else {
            guard inputs.count == 1, let only = inputs.first else { throw InputShapeError.unnamed(available: available) }
            input = only
        }
        let declared = input.shape
        guard declared.rank == entry.extents.count else {
            throw InputShapeError.rank(input: input.name, declared: declared, given: entry.extents)
        }
        var values = values
        for (axis, (dim, given)) in zip(declared.dims, entry.extents).enumerated() {
            guard let given else { continue }
            switch dim {
            case .known(let extent):
                guard extent == given else {
                    throw InputShapeError.mismatch(input: input.name, declared: declared, given: entry.extents, axis: axis)
                }
            case .symbol(let symbol), .scaled(_, let symbol):
                let coefficient = dim.coefficient
                guard given % coefficient == 0 else {
                    throw InputShapeError.mismatch(input: input.name, declared: declared, given: entry.extents, axis: axis)
                }
                if let earlier = values[symbol], earlier != given / coefficient {
                    throw InputShapeError.conflict(symbol: symbol, input: input.name, declared: declared,
                                                   values: [earlier, given / coefficient])
                }
                values[symbol] = given / coefficient
            }
        }
        return values
    }
}

/// A shape given for a model's input that cannot apply to it.
public enum InputShapeError: Error, CustomStringConvertible, Hashable, Sendable {
    case syntax(String)
    case unknownInput(String, available: [String])
    case unnamed(available: [String])
    case rank(input: String, declared: Shape, given: [Int?])
    case mismatch(input: String, declared: Shape, given: [Int?], axis: Int)
    case conflict(symbol: String, input: String, declared: Shape, values: [Int])

    public var description: String {
        switch self {
        case .syntax(let text):
            return "input shape '\(text)': write positive extents separated by x, as 1x3x224x224 (? keeps the model's dimension), "
                + "after name= for a model with several inputs"
        case .unknownInput(let name, let available):
            return "a shape is given for input '\(name)', which the model does not have (its inputs: \(available.joined(separator: ", ")))"
        case .unnamed(let available):
            return "the model has \(available.count) inputs (\(available.joined(separator: ", "))): name the one a shape is for, "
                + "as \(available.first ?? "input")=1x3x224x224"
        case .rank(let input, let declared, let given):
            return "input '\(input)' is \(declared), rank \(declared.rank), but the shape given for it has rank \(given.count): "
                + Self.text(given)
        case .mismatch(let input, let declared, let given, let axis):
            return "input '\(input)' is \(declared) but the shape given for it is \(Self.text(given)): axis \(axis) is \(declared[axis])"
        case .conflict(let symbol, let input, let declared, let values):
            return "input '\(input)' is \(declared): the shapes given make \(symbol) both \(values.map(String.init).joined(separator: " and "))"
        }
    }

    private static func text(_ extents: [Int?]) -> String {
        "[" + extents.map { $0.map(String.init) ?? "?" }.joined(separator: ",") + "]"
    }
}

extension Graph {
    /// The graph with the symbols `shapes` fixes replaced in its inputs' types; shapes downstream
    /// follow when it is inferred again.
    public func fixingInputs(_ shapes: InputShapes) throws -> Graph {
        guard !shapes.isEmpty else { return self }
        let values = try shapes.symbolValues(for: inputs.map { ($0.name, $0.type.shape) })
        var fixed = self
        for index in fixed.inputs.indices {
            fixed.inputs[index].type.shape = fixed.inputs[index].type.shape.binding(values)
        }
        return fixed
    }
}
