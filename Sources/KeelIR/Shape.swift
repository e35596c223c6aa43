/// One dimension of a shape: a known extent, a named symbol (the batch `N`) bound at run time, or
/// a multiple of a symbol (`49·N`: the tokens of a batch of 7×7 feature maps, once reshaped to rows).
public enum Dim: Hashable, Sendable, CustomStringConvertible {
    case known(Int)
    case symbol(String)
    /// `coefficient · symbol` with a coefficient of 2 or more (build it with `scaled(_:by:)`).
    case scaled(Int, String)

    public var value: Int? {
        if case .known(let extent) = self { return extent }
        return nil
    }

    public var isSymbolic: Bool { value == nil }

    /// The symbol this dimension is a multiple of; nil for a known extent.
    public var symbolName: String? {
        switch self {
        case .known: return nil
        case .symbol(let name), .scaled(_, let name): return name
        }
    }

    /// The known factor: the extent itself, or the multiple of the symbol.
    public var coefficient: Int {
        switch self {
        case .known(let extent): return extent
        case .symbol: return 1
        case .scaled(let coefficient, _): return coefficient
        }
    }

    /// `coefficient · symbol` in its one canonical spelling (0 and 1 are not kept as multiples).
    public static func scaled(_ symbol: String, by coefficient: Int) -> Dim {
        switch coefficient {
        case 0: return .known(0)
        case 1: return .symbol(symbol)
        default: return .scaled(coefficient, symbol)
        }
    }

    public var description: String {
        switch self {
        case .known(let extent): return String(extent)
        case .symbol(let name): return name
        case .scaled(let coefficient, let name): return "\(coefficient)·\(name)"
        }
    }
}

/// A product of dimensions as a known factor times symbols (with repeats): how reshapes check
/// that `[N,49,768]` and `[49·N,768]` hold the same number of elements for every batch.
public struct DimProduct: Hashable, Sendable {
    public var coefficient: Int
    public var symbols: [String]

    public init(coefficient: Int, symbols: [String]) {
        self.coefficient = coefficient
        self.symbols = symbols.sorted()
    }

    /// The product as one dimension; nil when it has two symbols or more.
    public var dim: Dim? { dividing(by: DimProduct(coefficient: 1, symbols: [])) }

    /// The product of `dims`; nil when it overflows.
    public init?<Dims: Sequence>(_ dims: Dims) where Dims.Element == Dim {
        var coefficient = 1
        var symbols: [String] = []
        for dim in dims {
            let (product, overflow) = coefficient.multipliedReportingOverflow(by: dim.coefficient)
            guard !overflow else { return nil }
            coefficient = product
            if let name = dim.symbolName { symbols.append(name) }
        }
        self.coefficient = coefficient
        self.symbols = symbols.sorted()
    }

    /// `self / divisor` as one dimension: nil unless the divisor's symbols are among these,
    /// at most one symbol is left over and the known factors divide exactly.
    public func dividing(by divisor: DimProduct) -> Dim? {
        var remaining = symbols
        for symbol in divisor.symbols {
            guard let index = remaining.firstIndex(of: symbol) else { return nil }
            remaining.remove(at: index)
        }
        guard divisor.coefficient > 0, coefficient % divisor.coefficient == 0, remaining.count <= 1 else { return nil }
        let quotient = coefficient / divisor.coefficient
        if let symbol = remaining.first { return .scaled(symbol, by: quotient) }
        return .known(quotient)
    }
}

extension Dim: ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
    public init(integerLiteral value: Int) { self = .known(value) }
    public init(stringLiteral value: String) { self = .symbol(value) }
}

/// A tensor shape whose dimensions may be symbolic.
public struct Shape: Hashable, Sendable, CustomStringConvertible, ExpressibleByArrayLiteral {
    public var dims: [Dim]

    public init(_ dims: [Dim]) { self.dims = dims }
    public init(arrayLiteral elements: Dim...) { self.dims = elements }
    public init(known extents: [Int]) { self.dims = extents.map(Dim.known) }

    public var rank: Int { dims.count }
    public subscript(index: Int) -> Dim {
        get { dims[index] }
        set { dims[index] = newValue }
    }

    /// The extents when every dimension is known.
    public var knownExtents: [Int]? {
        var result: [Int] = []
        result.reserveCapacity(dims.count)
        for dim in dims {
            guard let extent = dim.value else { return nil }
            result.append(extent)
        }
        return result
    }

    public var isFullyKnown: Bool { knownExtents != nil }

    /// Element count, or nil while a dimension is symbolic or when the product overflows
    /// (a corrupt model file must give an error, not a trap).
    public var elementCount: Int? {
        knownExtents.flatMap(Shape.checkedElementCount)
    }

    /// The most elements a tensor may have: its bytes (up to 16 per element) and any partial
    /// product of its extents then fit in an Int.
    public static let maximumElementCount = Int.max / 16

    /// The product of non-negative counts, or Int.max when it does not fit: cost figures (MACs)
    /// of absurd shapes then read as "too many" instead of wrapping to a small or negative number.
    public static func saturatingProduct<S: Sequence>(_ values: S) -> Int where S.Element == Int {
        var result = 1
        for value in values {
            let (product, overflow) = result.multipliedReportingOverflow(by: value)
            if overflow { return Int.max }
            result = product
        }
        return result
    }

    /// The product of `extents`, or nil when one is negative or the product of the non-zero ones
    /// exceeds `maximumElementCount`: sizes read from files go through here, so [2^62, 2^62, 0]
    /// is refused rather than trapping wherever a partial product is formed.
    public static func checkedElementCount(_ extents: [Int]) -> Int? {
        var nonZeroProduct = 1
        var hasZero = false
        for extent in extents {
            guard extent >= 0 else { return nil }
            if extent == 0 { hasZero = true; continue }
            let (product, overflow) = nonZeroProduct.multipliedReportingOverflow(by: extent)
            guard !overflow, product <= maximumElementCount else { return nil }
            nonZeroProduct = product
        }
        return hasZero ? 0 : nonZeroProduct
    }

    /// Product of the known dimensions only (for "per image" figures with a symbolic batch).
    public var knownProduct: Int { dims.reduce(1) { $0 * $1.coefficient } }

    /// Names of the symbolic dimensions, in order of first appearance.
    public var symbols: [String] {
        var seen: [String] = []
        for case let name? in dims.map(\.symbolName) where !seen.contains(name) { seen.append(name) }
        return seen
    }

    /// Replaces symbols by the extents bound to them; unbound symbols stay symbolic.
    public func binding(_ bindings: [String: Int]) -> Shape {
        Shape(dims.map { dim in
            guard let name = dim.symbolName, let extent = bindings[name] else { return dim }
            let (product, overflow) = dim.coefficient.multipliedReportingOverflow(by: extent)
            return overflow ? dim : .known(product)
        })
    }

    /// Normalises a possibly negative axis; nil when out of range.
    public func normalizedAxis(_ axis: Int) -> Int? {
        let resolved = axis < 0 ? axis + rank : axis
        return (0..<max(rank, 1)).contains(resolved) ? resolved : nil
    }

    /// `[N,224,224,3]`: the form used by the printer and by error messages.
    public var description: String { "[" + dims.map(\.description).joined(separator: ",") + "]" }

    /// `[N, 224, 224, 3]` with thousands kept readable for messages aimed at people.
    public var spacedDescription: String { "[" + dims.map(\.description).joined(separator: ", ") + "]" }
}
