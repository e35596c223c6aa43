/// Sum/mean over any set of axes. Reduced and kept axes are merged where contiguous, then each
/// output element is accumulated by one thread in a fixed order, so the result is independent of
/// the thread count. (Global pooling has its own faster kernel in Pooling.swift.)

public enum Reduction: Sendable, Equatable {
    case sum
    case mean
}

public enum Reduce {
    /// Reduces `input` of `shape` over `axes` (negative axes count from the end; empty means all).
    /// The output holds the kept axes in order; keepdims only changes the caller's shape, not the data.
    public static func apply(_ reduction: Reduction, input: UnsafeBufferPointer<Float>, shape: [Int], axes: [Int],
                             output: UnsafeMutableBufferPointer<Float>, context: KernelContext = .singleThreaded) throws {
        let name = reduction == .sum ? "reduce_sum" : "reduce_mean"
        let rank = shape.count
        var reduced = [Bool](repeating: axes.isEmpty, count: rank)
        for axis in axes {
            try require(axis >= -rank && axis < rank, name, "axis \(axis) out of range for rank \(rank)")
            reduced[axis < 0 ? axis + rank : axis] = true
        }
        let inputCount = try elementCount(shape, name)
        try requireCapacity(input.count, inputCount, name, "input")
        let keptShape = shape.indices.filter { !reduced[$0] }.map { shape[$0] }
        let reducedShape = shape.indices.filter { reduced[$0] }.map { shape[$0] }
        let outputCount = keptShape.reduce(1, *)
        let reducedCount = reducedShape.reduce(1, *)
        try requireCapacity(output.count, outputCount, name, "output")
        guard outputCount > 0, let destination = output.baseAddress else { return }
        guard reducedCount > 0, let source = input.baseAddress else {
            destination.update(repeating: reduction == .sum ? 0 : .nan, count: outputCount)
            return
        }
        let inputStrides = contiguousStrides(shape)
        let kept = StridedSpace(shape: keptShape, strides: [shape.indices.filter { !reduced[$0] }.map { inputStrides[$0] }])
        let inner = StridedSpace(shape: reducedShape, strides: [shape.indices.filter { reduced[$0] }.map { inputStrides[$0] }])
        let (innerExtent, innerStride) = (inner.inner, inner.innerStride(0))
        let scale: Float = reduction == .mean ? 1 / Float(reducedCount) : 1
        context.forEachChunk(outputCount, minimumChunk: max(1, parallelGrain / reducedCount)) { range in
            for element in range {
                // `kept` may have merged axes; walk it as rows of its inner extent.
                let base = kept.rowOffset(element / kept.inner, operand: 0) + (element % kept.inner) * kept.innerStride(0)
                var total: Float = 0
                for row in 0..<inner.rows {
                    let line = source + base + inner.rowOffset(row, operand: 0)
                    for index in 0..<innerExtent { total += line[index * innerStride] }
                }
                destination[element] = total * scale
            }
        }
    }
}
