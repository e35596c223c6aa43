/// One dimension of a shape: a known extent or a named symbol (the batch `N`) bound at run time.
public enum Dim: Hashable, Sendable, CustomStringConvertible {
    case known(Int)
    case symbol(String)

    public var value: Int? {
        if case .known(let extent) = self { return extent }
        return nil
    }

    public var isSymbolic: Bool { value == nil }

    public var description: String {
        switch self {
        case .known(let extent): return String(extent)
        case .symbol(let name): return name
        }
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
    public var knownProduct: Int { dims.reduce(1) { $0 * ($1.value ?? 1) } }

    /// Names of the symbolic dimensions, in order of first appearance.
    public var symbols: [String] {
        var seen: [String] = []
        for case .symbol(let name) in dims where !seen.contains(name) { seen.append(name) }
        return seen
    }

    /// Replaces symbols by the extents bound to them; unbound symbols stay symbolic.
    public func binding(_ bindings: [String: Int]) -> Shape {
        Shape(dims.map { dim in
            if case .symbol(let name) = dim, let extent = bindings[name] { return .known(extent) }
            return dim
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
