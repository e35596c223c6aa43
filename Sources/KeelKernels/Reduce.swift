/// Sum/mean/sum of squares/product over any set of axes. Reduced and kept axes are merged where contiguous. When the
/// innermost kept axis is contiguous (mean over H, W of NHWC, as tf2onnx emits for global pooling)
/// whole rows are added at once; otherwise each output element walks its reduced positions. Either
/// way every output element is summed by one thread in a fixed order, so results do not depend
/// on the thread count. A contiguous innermost reduced run is summed in 16 lanes first.

public enum Reduction: Sendable, Equatable {
    case sum
    case mean
    /// Σx² (ONNX ReduceSumSquare: tf2onnx's variance inside LayerNormalization).
    case sumOfSquares
    case product
    /// The largest and smallest element; NaN wherever one is reduced (IEEE 754-2019 maximum).
    case maximum, minimum

    var name: String {
        switch self {
        case .sum: return "reduce_sum"
        case .mean: return "reduce_mean"
        case .sumOfSquares: return "reduce_sum_square"
        case .product: return "reduce_prod"
        case .maximum: return "reduce_max"
        case .minimum: return "reduce_min"
        }
    }

    /// What an empty reduction yields: ONNX's identity elements, NaN for a mean of nothing.
    var emptyValue: Float {
        switch self {
        case .sum, .sumOfSquares: return 0
        case .mean: return .nan
        case .product: return 1
        case .maximum: return -.infinity
        case .minimum: return .infinity
        }
    }
}

/// The per-element step of a reduction, resolved once per call so the loops stay branch-free.
private protocol Accumulation {
    static var start: Float { get }
    static func combine(_ total: Float, _ element: Float) -> Float
    static func combine(_ total: Lanes, _ element: Lanes) -> Lanes
    /// The lanes' totals as one (summed or multiplied in a fixed order).
    static func collapse(_ lanes: Lanes) -> Float
    /// Two partial totals as one.
    static func merge(_ first: Float, _ second: Float) -> Float
}

/// Lanes a contiguous innermost reduction keeps apart, so the additions need not wait on each other.
private typealias Lanes = SIMD16<Float>

private enum Summing: Accumulation {
    static var start: Float { 0 }
    @inline(__always) static func combine(_ total: Float, _ element: Float) -> Float { total + element }
    @inline(__always) static func combine(_ total: Lanes, _ element: Lanes) -> Lanes { total + element }
    @inline(__always) static func collapse(_ lanes: Lanes) -> Float { lanes.sumByHalves }
    @inline(__always) static func merge(_ first: Float, _ second: Float) -> Float { first + second }
}

private enum SummingSquares: Accumulation {
    static var start: Float { 0 }
    @inline(__always) static func combine(_ total: Float, _ element: Float) -> Float { total + element * element }
    @inline(__always) static func combine(_ total: Lanes, _ element: Lanes) -> Lanes { total + element * element }
    @inline(__always) static func collapse(_ lanes: Lanes) -> Float { lanes.sumByHalves }
    @inline(__always) static func merge(_ first: Float, _ second: Float) -> Float { first + second }
}

private enum Multiplying: Accumulation {
    static var start: Float { 1 }
    @inline(__always) static func combine(_ total: Float, _ element: Float) -> Float { total * element }
    @inline(__always) static func combine(_ total: Lanes, _ element: Lanes) -> Lanes { total * element }
    @inline(__always) static func collapse(_ lanes: Lanes) -> Float {
        (0..<Lanes.scalarCount).reduce(1) { $0 * lanes[$1] }
    }
    @inline(__always) static func merge(_ first: Float, _ second: Float) -> Float { first * second }
}

/// NaN wins: once a total is NaN no comparison replaces it, and a NaN element always does.
private enum Maximizing: Accumulation {
    static var start: Float { -.infinity }
    @inline(__always) static func combine(_ total: Float, _ element: Float) -> Float { propagatingMax(total, element) }
    @inline(__always) static func combine(_ total: Lanes, _ element: Lanes) -> Lanes {
        total.replacing(with: element, where: (element .> total) .| (element .!= element))
    }
    @inline(__always) static func collapse(_ lanes: Lanes) -> Float {
        (0..<Lanes.scalarCount).reduce(-.infinity) { propagatingMax($0, lanes[$1]) }
    }
    @inline(__always) static func merge(_ first: Float, _ second: Float) -> Float { propagatingMax(first, second) }
}

private enum Minimizing: Accumulation {
    static var start: Float { .infinity }
    @inline(__always) static func combine(_ total: Float, _ element: Float) -> Float { propagatingMin(total, element) }
    @inline(__always) static func combine(_ total: Lanes, _ element: Lanes) -> Lanes {
        total.replacing(with: element, where: (element .< total) .| (element .!= element))
    }
    @inline(__always) static func collapse(_ lanes: Lanes) -> Float {
        (0..<Lanes.scalarCount).reduce(.infinity) { propagatingMin($0, lanes[$1]) }
    }
    @inline(__always) static func merge(_ first: Float, _ second: Float) -> Float { propagatingMin(first, second) }
}

public enum Reduce {
    /// Reduces `input` of `shape` over `axes` (negative axes count from the end; empty means all).
    /// The output holds the kept axes in order; keepdims only changes the caller's shape, not the data.
    public static func apply(_ reduction: Reduction, input: UnsafeBufferPointer<Float>, shape: [Int], axes: [Int],
                             output: UnsafeMutableBufferPointer<Float>, context: KernelContext = .singleThreaded) throws {
        let name = reduction.name
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
            destination.update(repeating: reduction.emptyValue, count: outputCount)
            return
        }
        let inputStrides = contiguousStrides(shape)
        let kept = StridedSpace(shape: keptShape, strides: [shape.indices.filter { !reduced[$0] }.map { inputStrides[$0] }])
        let reducedSpace = StridedSpace(shape: reducedShape, strides: [shape.indices.filter { reduced[$0] }.map { inputStrides[$0] }])
        let scale: Float = reduction == .mean ? 1 / Float(reducedCount) : 1
        switch reduction {
        case .sum, .mean: run(Summing.self, source, destination, outputCount, kept, reducedSpace, scale, context)
        case .sumOfSquares: run(SummingSquares.self, source, destination, outputCount, kept, reducedSpace, scale, context)
        case .product: run(Multiplying.self, source, destination, outputCount, kept, reducedSpace, scale, context)
        case .maximum: run(Maximizing.self, source, destination, outputCount, kept, reducedSpace, scale, context)
        case .minimum: run(Minimizing.self, source, destination, outputCount, kept, reducedSpace, scale, context)
        }
    }

    private static func run<A: Accumulation>(_ accumulation: A.Type, _ source: UnsafePointer<Float>,
                                             _ destination: UnsafeMutablePointer<Float>, _ count: Int,
                                             _ kept: StridedSpace, _ reduced: StridedSpace, _ scale: Float,
                                             _ context: KernelContext) {
        if kept.innerStride(0) == 1 && kept.inner > 1 {
            accumulateRows(A.self, source, destination, kept: kept, reduced: reduced, scale: scale, context: context)
        } else {
            accumulateElements(A.self, source, destination, count: count, kept: kept, reduced: reduced, scale: scale,
                               context: context)
        }
    }

    /// The innermost kept axis is contiguous in the input (e.g. mean over H, W of NHWC): add whole
    /// input rows into output rows, one reduced position after another.
    private static func accumulateRows<A: Accumulation>(_ accumulation: A.Type, _ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<Float>,
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
                target.update(repeating: A.start, count: columns.count)
                for position in 0..<reducedCount {
                    let line = base + reduced.elementOffset(position, operand: 0)
                    for column in 0..<columns.count { target[column] = A.combine(target[column], line[column]) }
                }
                for column in 0..<columns.count { target[column] *= scale }
            }
        }
    }

    /// General case: each output element sums its reduced positions, innermost reduced axis last.
    private static func accumulateElements<A: Accumulation>(_ accumulation: A.Type, _ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<Float>,
                                           count: Int, kept: StridedSpace, reduced: StridedSpace, scale: Float,
                                           context: KernelContext) {
        let (innerExtent, innerStride) = (reduced.inner, reduced.innerStride(0))
        let reducedCount = reduced.rows * innerExtent
        // A contiguous innermost run (Swin V2's L2 norm over a head's 32 features) in 16 lanes.
        let wholeLanes = innerStride == 1 ? innerExtent / Lanes.scalarCount * Lanes.scalarCount : 0
        context.forEachChunk(count, minimumChunk: max(1, parallelGrain / reducedCount)) { range in
            for element in range {
                let base = kept.elementOffset(element, operand: 0)
                var lanes = Lanes(repeating: A.start)
                var total = A.start
                for row in 0..<reduced.rows {
                    let line = source + base + reduced.rowOffset(row, operand: 0)
                    for index in stride(from: 0, to: wholeLanes, by: Lanes.scalarCount) {
                        lanes = A.combine(lanes, UnsafeRawPointer(line + index).loadUnaligned(as: Lanes.self))
                    }
                    for index in wholeLanes..<innerExtent { total = A.combine(total, line[index * innerStride]) }
                }
                destination[element] = (wholeLanes > 0 ? A.merge(A.collapse(lanes), total) : total) * scale
            }
        }
    }
}
