/// The float values of prepared weights: either owned (computed at load time) or borrowed from
/// memory another object keeps alive (a mapped compiled-model file), so a model read from disk
/// uses its prepared filters in place instead of copying hundreds of megabytes.
public struct WeightStorage: @unchecked Sendable, Equatable {
    /// Valid for as long as `owner` lives; never written after construction.
    let buffer: UnsafeBufferPointer<Float>
    private let owner: AnyObject

    /// Owned storage that `fill` writes once, every element: it starts uninitialised, since
    /// zero-filling hundreds of megabytes only to overwrite them costs a pass over memory.
    init(count: Int, fill: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        let owned = OwnedFloats(count: count)
        try fill(owned.values)
        buffer = UnsafeBufferPointer(owned.values)
        owner = owned
    }

    /// Borrows `values`; `owner` is retained so the memory outlives every copy of these weights.
    init(borrowing values: UnsafeBufferPointer<Float>, owner: AnyObject) {
        buffer = values
        self.owner = owner
    }

    var count: Int { buffer.count }

    func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try withExtendedLifetime(owner) { try body(buffer) }
    }

    public static func == (lhs: WeightStorage, rhs: WeightStorage) -> Bool {
        lhs.buffer.elementsEqual(rhs.buffer)
    }
}

/// Heap memory for owned weights, freed with the last weights that reference it.
private final class OwnedFloats {
    let values: UnsafeMutableBufferPointer<Float>

    init(count: Int) {
        values = CacheLineMemory.allocateFloats(count)
    }

    deinit { values.deallocate() }
}
