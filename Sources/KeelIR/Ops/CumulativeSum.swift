extension OpRegistry {
    /// cumsum: running sums along one axis (ONNX CumSum), from the front or, with `reverse`, from
    /// the back; `exclusive` leaves each element out of its own sum. EdgeNeXt's and DETR's Fourier
    /// positional encodings number the pixels of a mask this way.
    static var cumulativeSumSchema: OpSchema {
        OpSchema(kind: .cumulativeSum, category: .reduction, reference: { context in
            let input = try context.input(0)
            let axis = try context.attributes.int("axis")
            guard let geometry = CumulativeSum(shape: input.shape, axis: axis, exclusive: try context.attributes.bool("exclusive"),
                                               reverse: try context.attributes.bool("reverse")) else {
                throw context.attributes.error("axis \(axis) is out of range for shape \(Shape(known: input.shape))")
            }
            var result = [Double](repeating: 0, count: input.values.count)
            geometry.run(read: { input.values[$0] }, write: { result[$0] = $1 })
            return result
        }, inputs: [.init("x")], attributes: [.init("axis", default: .int(0)),
                                               .init("exclusive", default: .bool(false), "each sum leaves its own element out"),
                                               .init("reverse", default: .bool(false), "sums run from the end of the axis")]) { context in
            let input = try context.type(0)
            _ = try context.axis(try context.attributes.int("axis"), rank: input.shape.rank, of: 0, input)
            return [input]
        }
    }
}

/// A cumulative sum over a C-order tensor: one run per position of the other axes, a strided
/// walk along the summed axis. Shared by the reference evaluation (in Double) and the kernel (in
/// Float, as ONNX Runtime sums) so both read the attributes alike.
public struct CumulativeSum: Sendable, Equatable {
    /// Elements before, along and after the summed axis.
    public let outer: Int, extent: Int, inner: Int
    public let exclusive: Bool, reverse: Bool

    /// Nil when `axis` is outside the shape.
    public init?(shape: [Int], axis: Int, exclusive: Bool, reverse: Bool) {
        let resolved = axis < 0 ? axis + shape.count : axis
        guard resolved >= 0, resolved < shape.count else { return nil }
        outer = shape[..<resolved].reduce(1, *)
        extent = shape[resolved]
        inner = shape[(resolved + 1)...].reduce(1, *)
        (self.exclusive, self.reverse) = (exclusive, reverse)
    }

    /// Writes each element's running sum; `read` and `write` take C-order offsets.
    @inline(__always)
    public func run<Value: FloatingPoint>(read: (Int) -> Value, write: (Int, Value) -> Void) {
        for before in 0..<outer {
            for after in 0..<inner {
                let base = before * extent * inner + after
                var total: Value = 0
                for step in 0..<extent {
                    let offset = base + (reverse ? extent - 1 - step : step) * inner
                    let value = read(offset)
                    if exclusive {
                        write(offset, total)
                        total += value
                    } else {
                        total += value
                        write(offset, total)
                    }
                }
            }
        }
    }
}
