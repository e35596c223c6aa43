/// Sum/mean over any set of axes. Reduced and kept axes are merged where contiguous. When the
/// innermost kept axis is contiguous (mean over H, W of NHWC, as tf2onnx emits for global pooling)
/// whole rows are added at once; otherwise each output element walks its reduced positions. Either
/// way every output element is summed by one thread in a fixed order, so results do not depend
/// on the thread count.

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
        let reducedSpace = StridedSpace(shape: reducedShape, strides: [shape.indices.filter { reduced[$0] }.map { inputStrides[$0] }])
        let scale: Float = reduction == .mean ? 1 / Float(reducedCount) : 1
        if kept.innerStride(0) == 1 && kept.inner > 1 {
            accumulateRows(source, destination, kept: kept, reduced: reducedSpace, scale: scale, context: context)
        } else {
            accumulateElements(source, destination, count: outputCount, kept: kept, reduced: reducedSpace, scale: scale,
                               context: context)
        }
    }

    /// The innermost kept axis is contiguous in the input (e.g. mean over H, W of NHWC): add whole
    /// input rows into output rows, one reduced position after another.
    private static func accumulateRows(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<Float>,
                                       kept: StridedSpace, reduced: StridedSpace, scale: Float, context: KernelContext) {
        let width = kept.inner
        let reducedCount = reduced.rows * reduced.inner
        let work = kept.rows * width * reducedCount
        let columnChunks = kept.rows >= context.threads ? 1 : min(context.threads, max(1, work / parallelGrain))
        context.forEachChunk(kept.rows * columnChunks, minimumChunk: max(1, parallelGrain / (width * reducedCount))) { range in
            for item in range {
                let row = item / columnChunks
                let chunk = item - row * columnChunks
                let columns = (width * chunk / columnChunks)..<(width * (chunk + 1) / columnChunks)
                let target = destination + row * width + columns.lowerBound
                let base = source + kept.rowOffset(row, operand: 0) + columns.lowerBound
                target.update(repeating: 0, count: columns.count)
                for position in 0..<reducedCount {
                    let line = base + reduced.elementOffset(position, operand: 0)
                    for column in 0..<columns.count { target[column] += line[column] }
                }
                for column in 0..<columns.count { target[column] *= scale }
            }
        }
    }

    /// General case: each output element sums its reduced positions, innermost reduced axis last.
    private static func accumulateElements(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<Float>,
                                           count: Int, kept: StridedSpace, reduced: StridedSpace, scale: Float,
                                           context: KernelContext) {
        let (innerExtent, innerStride) = (reduced.inner, reduced.innerStride(0))
        let reducedCount = reduced.rows * innerExtent
        context.forEachChunk(count, minimumChunk: max(1, parallelGrain / reducedCount)) { range in
            for element in range {
                let base = kept.elementOffset(element, operand: 0)
                var total: Float = 0
                for row in 0..<reduced.rows {
                    let line = source + base + reduced.rowOffset(row, operand: 0)
                    for index in 0..<innerExtent { total += line[index * innerStride] }
                }
                destination[element] = total * scale
            }
        }
    }
}
