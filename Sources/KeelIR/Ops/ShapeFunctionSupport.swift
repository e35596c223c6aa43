/// Helpers every shape function shares: naming the layer and its inputs in messages, reading
/// input types and attributes, and the dimension arithmetic that keeps the batch symbolic.
extension OpSchema.Context {
    public var attributes: AttributeReader { AttributeReader(node: node) }

    /// `conv2d 'block1_conv1'`
    public var layerDescription: String { attributes.layerDescription }

    /// A diagnostic at the node: `<op> '<layer>' <message>`.
    public func error(_ message: String) -> Diagnostic { attributes.error(message) }

    /// The value name of input `index` (`flatten`, `block1_conv1/kernel`), or "" when absent.
    public func inputName(_ index: Int) -> String {
        index < node.inputs.count ? node.inputs[index] : ""
    }

    /// The type of a required input.
    public func type(_ index: Int) throws -> TensorType {
        guard let type = optionalType(index) else {
            let specName = OpRegistry.schema(for: node.op).inputName(at: index)
            throw error("is missing its '\(specName)' input")
        }
        return type
    }

    /// The type of an optional input, nil when absent.
    public func optionalType(_ index: Int) -> TensorType? {
        guard index < inputTypes.count, !inputName(index).isEmpty else { return nil }
        return inputTypes[index]
    }

    /// The types of every present input (variadic ops).
    public func presentTypes() throws -> [(name: String, type: TensorType)] {
        try node.inputs.indices.compactMap { index in
            inputName(index).isEmpty ? nil : (inputName(index), try type(index))
        }
    }

    /// `input 'flatten' [N,32768]`, the way messages quote an input.
    public func quote(_ index: Int, _ type: TensorType) -> String {
        "input '\(inputName(index))' \(type.shape)"
    }

    /// Resolves a possibly negative axis attribute against `rank`, or throws naming the shape.
    public func axis(_ value: Int, rank: Int, of index: Int, _ type: TensorType, attribute: String = "axis") throws -> Int {
        let resolved = value < 0 ? value + rank : value
        guard resolved >= 0, resolved < rank else {
            throw error("\(attribute) \(value) is out of range for \(quote(index, type)) of rank \(rank)")
        }
        return resolved
    }

    /// Requires a rank-4 image input; layouts name the axes in messages.
    public func requireImage(_ index: Int, layout: Layout) throws -> TensorType {
        let input = try type(index)
        guard input.shape.rank == 4 else {
            throw error("expects a rank-4 \(layout.rawValue) input but \(quote(index, input)) has rank \(input.shape.rank)")
        }
        return input
    }

    /// The `layout` attribute of spatial ops.
    public func layout() throws -> Layout {
        Layout(rawValue: try attributes.choice("layout", ["nhwc", "nchw"])) ?? .nhwc
    }
}

extension OpSchema {
    /// The declared name of input `index` (the variadic spec repeats).
    public func inputName(at index: Int) -> String {
        if index < inputs.count { return inputs[index].name }
        return inputs.last?.name ?? "input"
    }
}

/// Dimension arithmetic that keeps symbols: products cancel a symbol only where it appears once.
enum DimMath {
    /// The product of `dims` as one dimension: a known extent, or a multiple of the one symbol
    /// among them (`7·N`); nil when two symbols meet (the product has no name) or it overflows.
    static func product(_ dims: ArraySlice<Dim>) -> Dim? {
        if let product = DimProduct(dims) { return product.dim }
        // An overflowing product wraps: shape inference's addressability check then refuses the
        // input or value with its own message, rather than this op with a misleading one.
        let symbols = dims.compactMap(\.symbolName)
        guard symbols.count <= 1 else { return nil }
        let wrapped = dims.reduce(1) { $0 &* $1.coefficient }
        return symbols.first.map { .scaled($0, by: wrapped) } ?? .known(wrapped)
    }

    /// NumPy broadcasting of two shapes; a symbol against a known extent > 1 takes the extent
    /// (the symbol must bind to it or to 1). Nil when incompatible.
    static func broadcast(_ left: Shape, _ right: Shape) -> Shape? {
        let rank = Swift.max(left.rank, right.rank)
        var dims: [Dim] = []
        for position in 0..<rank {
            let leftIndex = left.rank - rank + position
            let rightIndex = right.rank - rank + position
            let a: Dim = leftIndex >= 0 ? left.dims[leftIndex] : .known(1)
            let b: Dim = rightIndex >= 0 ? right.dims[rightIndex] : .known(1)
            if a == b { dims.append(a); continue }
            switch (a, b) {
            case (.known(1), _): dims.append(b)
            case (_, .known(1)): dims.append(a)
            case (_, .known) where a.isSymbolic: dims.append(b)
            case (.known, _) where b.isSymbolic: dims.append(a)
            default: return nil
            }
        }
        return Shape(dims)
    }
}
