/// Kernels that only move data: transpose, concat, constant pad, strided slice, gather and scatter.
/// Transpose, slice and pad are strided copies (StridedLoops.swift) with the right strides and
/// offsets; concat and gather copy contiguous runs. Shapes come in as plain [Int] arrays.

/// A resolved slice: where it starts and how it steps on every axis, and the shape it yields.
public struct SliceRegion: Sendable, Equatable {
    public var starts: [Int]
    public var steps: [Int]
    public var outputShape: [Int]
}

/// How ScatterND combines an element of its data with the update that lands on it.
public enum ScatterReduction: Sendable {
    case replace, add, multiply, maximum, minimum
}

public enum DataMovement {
    /// output = input with axes permuted: output axis i is input axis `permutation[i]` (rank ≤ 6).
    public static func transpose(input: UnsafeBufferPointer<Float>, shape: [Int], permutation: [Int],
                                 output: UnsafeMutableBufferPointer<Float>, context: KernelContext = .singleThreaded) throws {
        let name = "transpose"
        try require(shape.count <= 6, name, "rank \(shape.count) exceeds 6")
        try require(permutation.sorted() == Array(0..<shape.count), name,
                    "\(permutation) is not a permutation of \(shape.count) axes")
        let count = try elementCount(shape, name)
        try requireCapacity(input.count, count, name, "input")
        try requireCapacity(output.count, count, name, "output")
        guard count > 0, let source = input.baseAddress, let destination = output.baseAddress else { return }
        let inputStrides = contiguousStrides(shape)
        let outputShape = permutation.map { shape[$0] }
        stridedCopy(from: source, sourceStrides: permutation.map { inputStrides[$0] }, to: destination,
                    destinationStrides: contiguousStrides(outputShape), shape: outputShape, context: context)
    }

    /// Concatenates tensors viewed as [outer, axisExtents[i], inner] along the middle axis.
    public static func concat(inputs: [UnsafeBufferPointer<Float>], axisExtents: [Int], outer: Int, inner: Int,
                              output: UnsafeMutableBufferPointer<Float>, context: KernelContext = .singleThreaded) throws {
        let starts = axisExtents.reduce(into: [0]) { $0.append($0[$0.count - 1] + $1) }
        try copyIntoSlices(inputs: inputs, axisStarts: Array(starts.dropLast()), axisExtents: axisExtents, outer: outer,
                           inner: inner, outputAxisExtent: starts[starts.count - 1], output: output, context: context)
    }

    /// Copies input i, viewed as [outer, axisExtents[i], inner], to axis positions
    /// axisStarts[i]..< of an output whose rows hold `outputAxisExtent` × inner elements; the
    /// output's other positions are left as they are. A concatenation whose other inputs already
    /// sit in its buffer (`ConcatPlacement`) copies only the rest, and its output may be a slice
    /// of a wider buffer: then `output` starts at the slice and the last row ends short.
    public static func copyIntoSlices(inputs: [UnsafeBufferPointer<Float>], axisStarts: [Int], axisExtents: [Int],
                                      outer: Int, inner: Int, outputAxisExtent: Int,
                                      output: UnsafeMutableBufferPointer<Float>,
                                      context: KernelContext = .singleThreaded) throws {
        let name = "concat"
        try require(inputs.count == axisExtents.count && axisStarts.count == axisExtents.count,
                    name, "\(inputs.count) inputs with \(axisStarts.count) starts and \(axisExtents.count) axis extents")
        let rowLength = try elementCount([outputAxisExtent, inner], name)
        for (buffer, (start, extent)) in zip(inputs, zip(axisStarts, axisExtents)) {
            try require(start >= 0 && extent >= 0 && start + extent <= outputAxisExtent, name,
                        "slice \(start)..<\(start + extent) outside an axis of \(outputAxisExtent)")
            try requireCapacity(buffer.count, try elementCount([outer, extent, inner], name), name, "input")
            if outer > 0, extent > 0, inner > 0 {
                try requireCapacity(output.count, (outer - 1) * rowLength + (start + extent) * inner, name, "output")
            }
        }
        guard outer > 0, inner > 0, let destination = output.baseAddress else { return }
        for (buffer, (start, extent)) in zip(inputs, zip(axisStarts, axisExtents)) {
            let run = extent * inner
            guard run > 0, let source = buffer.baseAddress else { continue }
            let offset = start * inner
            context.forEachChunk(outer, minimumChunk: max(1, parallelGrain / run)) { rows in
                for row in rows {
                    (destination + row * rowLength + offset).update(from: source + row * run, count: run)
                }
            }
        }
    }

    /// Constant padding. `pads` is ONNX-ordered [begin per axis…, end per axis…]; negative pads crop.
    /// The output shape is shape[i] + begin[i] + end[i].
    public static func pad(input: UnsafeBufferPointer<Float>, shape: [Int], pads: [Int], value: Float = 0,
                           output: UnsafeMutableBufferPointer<Float>, context: KernelContext = .singleThreaded) throws {
        let name = "pad"
        let rank = shape.count
        try require(pads.count == 2 * rank, name, "\(pads.count) pads for rank \(rank)")
        try require(pads.allSatisfy { $0.magnitude <= UInt(Int32.max) } && shape.allSatisfy { $0 >= 0 && $0 <= Int(Int32.max) },
                    name, "pads \(pads) or shape \(shape) out of range")
        let outputShape = (0..<rank).map { shape[$0] + pads[$0] + pads[rank + $0] }
        try require(outputShape.allSatisfy { $0 >= 0 }, name, "pads \(pads) crop \(shape) below zero")
        try requireCapacity(input.count, try elementCount(shape, name), name, "input")
        let count = try elementCount(outputShape, name)
        try requireCapacity(output.count, count, name, "output")
        guard count > 0, let destination = output.baseAddress else { return }
        context.forEachChunk(count, minimumChunk: parallelGrain) { range in
            (destination + range.lowerBound).update(repeating: value, count: range.count)
        }
        var copyShape: [Int] = []
        var sourceOffset = 0
        var destinationOffset = 0
        let (inputStrides, outputStrides) = (contiguousStrides(shape), contiguousStrides(outputShape))
        for axis in 0..<rank {
            let begin = pads[axis]
            let inputStart = max(-begin, 0)
            let outputStart = max(begin, 0)
            let extent = min(shape[axis] - inputStart, outputShape[axis] - outputStart)
            guard extent > 0 else { return }
            copyShape.append(extent)
            sourceOffset += inputStart * inputStrides[axis]
            destinationOffset += outputStart * outputStrides[axis]
        }
        guard let source = input.baseAddress else { return }
        stridedCopy(from: source + sourceOffset, sourceStrides: inputStrides, to: destination + destinationOffset,
                    destinationStrides: outputStrides, shape: copyShape, context: context)
    }

    /// Resolves ONNX Slice arguments (negative indices, clamping, negative steps) for `shape`.
    /// `axes` defaults to all axes in order and `steps` to 1s.
    public static func resolveSlice(shape: [Int], starts: [Int], ends: [Int], axes: [Int]? = nil,
                                    steps: [Int]? = nil) throws -> SliceRegion {
        let name = "slice"
        let rank = shape.count
        let sliceAxes = axes ?? Array(0..<starts.count)
        let sliceSteps = steps ?? [Int](repeating: 1, count: starts.count)
        try require(starts.count == ends.count && starts.count == sliceAxes.count && starts.count == sliceSteps.count,
                    name, "starts, ends, axes and steps differ in length")
        var region = SliceRegion(starts: [Int](repeating: 0, count: rank), steps: [Int](repeating: 1, count: rank),
                                 outputShape: shape)
        var seen = Set<Int>()
        for (position, rawAxis) in sliceAxes.enumerated() {
            try require(rawAxis >= -rank && rawAxis < rank, name, "axis \(rawAxis) out of range for rank \(rank)")
            let axis = rawAxis < 0 ? rawAxis + rank : rawAxis
            try require(seen.insert(axis).inserted, name, "axis \(axis) repeated")
            let extent = shape[axis]
            try require(extent >= 0, name, "negative extent in shape \(shape)")
            try require(sliceSteps[position] != 0, name, "step must not be zero")
            // A step longer than the axis picks at most one element either way; clamping it keeps
            // the arithmetic below (and the strides built from it) far from overflow.
            let step = sliceSteps[position] > 0 ? min(sliceSteps[position], max(extent, 1))
                                                : max(sliceSteps[position], -max(extent, 1))
            var start = starts[position] < 0 ? starts[position] + extent : starts[position]
            var end = ends[position] < 0 ? ends[position] + extent : ends[position]
            if step > 0 {
                start = min(max(start, 0), extent)
                end = min(max(end, 0), extent)
            } else {
                start = min(max(start, 0), extent - 1)
                end = min(max(end, -1), extent - 1)
            }
            let length = step > 0 ? (end - start + step - 1) / step : (start - end + (-step) - 1) / (-step)
            region.starts[axis] = start
            region.steps[axis] = step
            region.outputShape[axis] = max(0, length)
        }
        return region
    }

    /// Copies the slice `region` (from `resolveSlice`) of `input` of `shape` into `output`.
    public static func slice(input: UnsafeBufferPointer<Float>, shape: [Int], region: SliceRegion,
                             output: UnsafeMutableBufferPointer<Float>, context: KernelContext = .singleThreaded) throws {
        let name = "slice"
        let rank = shape.count
        try require(region.starts.count == rank && region.steps.count == rank && region.outputShape.count == rank,
                    name, "region rank differs from input rank \(rank)")
        for axis in 0..<rank where region.outputShape[axis] > 0 {
            let last = region.starts[axis] + (region.outputShape[axis] - 1) * region.steps[axis]
            try require(region.starts[axis] >= 0 && region.starts[axis] < shape[axis] && last >= 0 && last < shape[axis],
                        name, "region leaves axis \(axis) of extent \(shape[axis])")
        }
        try requireCapacity(input.count, try elementCount(shape, name), name, "input")
        let count = try elementCount(region.outputShape, name)
        try requireCapacity(output.count, count, name, "output")
        guard count > 0, let source = input.baseAddress, let destination = output.baseAddress else { return }
        let inputStrides = contiguousStrides(shape)
        let offset = (0..<rank).reduce(0) { $0 + region.starts[$1] * inputStrides[$1] }
        stridedCopy(from: source + offset, sourceStrides: (0..<rank).map { inputStrides[$0] * region.steps[$0] },
                    to: destination, destinationStrides: contiguousStrides(region.outputShape),
                    shape: region.outputShape, context: context)
    }

    /// Gathers along the middle axis of `input` viewed as [outer, axisExtent, inner]:
    /// output[o, j, i] = input[o, indices[j], i]. Negative indices count from the end.
    /// The output is [outer, indices.count, inner] (indices may have any shape; it is flattened).
    public static func gather<Index: BinaryInteger>(input: UnsafeBufferPointer<Float>, outer: Int, axisExtent: Int,
                                                    inner: Int, indices: UnsafeBufferPointer<Index>,
                                                    output: UnsafeMutableBufferPointer<Float>,
                                                    context: KernelContext = .singleThreaded) throws {
        let name = "gather"
        try requireCapacity(input.count, try elementCount([outer, axisExtent, inner], name), name, "input")
        let count = try elementCount([outer, indices.count, inner], name)
        try requireCapacity(output.count, count, name, "output")
        var positions: [Int] = []
        positions.reserveCapacity(indices.count)
        for index in indices {
            let value = Int(truncatingIfNeeded: index)
            try require(value >= -axisExtent && value < axisExtent, name, "index \(index) out of range for extent \(axisExtent)")
            positions.append(value < 0 ? value + axisExtent : value)
        }
        guard count > 0, let source = input.baseAddress, let destination = output.baseAddress else { return }
        positions.withUnsafeBufferPointer { positions in
            gather(source, outer: outer, axisExtent: axisExtent, inner: inner, positions: positions, destination, context)
        }
    }

    /// The gather with positions resolved and checked. Single elements (a channel shuffle in NHWC,
    /// inner = 1) are copied in a plain loop per row: one copy call per element cost ShuffleNet's
    /// sixteen shuffles 9 ms at batch 1.
    private static func gather(_ source: UnsafePointer<Float>, outer: Int, axisExtent: Int, inner: Int,
                               positions: UnsafeBufferPointer<Int>, _ destination: UnsafeMutablePointer<Float>,
                               _ context: KernelContext) {
        let picks = positions.count
        if inner == 1 {
            context.forEachChunk(outer, minimumChunk: max(1, parallelGrain / max(picks, 1))) { range in
                for block in range {
                    let (from, to) = (source + block * axisExtent, destination + block * picks)
                    for pick in 0..<picks { to[pick] = from[positions[pick]] }
                }
            }
            return
        }
        context.forEachChunk(outer * picks, minimumChunk: max(1, parallelGrain / inner)) { range in
            for item in range {
                let block = item / picks
                (destination + item * inner).update(from: source + (block * axisExtent + positions[item - block * picks]) * inner, count: inner)
            }
        }
    }

    /// ONNX ScatterND, its index tuples resolved ahead of time to element offsets: output = data,
    /// then the `pieceSize` elements at each `offsets[i]` combined with updates[i·pieceSize ..< (i+1)·pieceSize],
    /// in order (a later tuple naming the same place wins, as ONNX Runtime's does).
    public static func scatterND(data: UnsafeBufferPointer<Float>, offsets: [Int], pieceSize: Int,
                                 updates: UnsafeBufferPointer<Float>, reduction: ScatterReduction,
                                 output: UnsafeMutableBufferPointer<Float>) throws {
        let name = "scatter_nd"
        try requireCapacity(output.count, data.count, name, "output")
        try requireCapacity(updates.count, try elementCount([offsets.count, pieceSize], name), name, "updates")
        try require(offsets.allSatisfy { $0 >= 0 && $0 <= data.count - pieceSize }, name, "an offset lies outside the data")
        guard let source = data.baseAddress, let destination = output.baseAddress else { return }
        destination.update(from: source, count: data.count)
        guard let update = updates.baseAddress, pieceSize > 0 else { return }
        for (tuple, offset) in offsets.enumerated() {
            let target = destination + offset, piece = update + tuple * pieceSize
            switch reduction {
            case .replace: target.update(from: piece, count: pieceSize)
            case .add: for element in 0..<pieceSize { target[element] += piece[element] }
            case .multiply: for element in 0..<pieceSize { target[element] *= piece[element] }
            case .maximum: for element in 0..<pieceSize { target[element] = Swift.max(target[element], piece[element]) }
            case .minimum: for element in 0..<pieceSize { target[element] = Swift.min(target[element], piece[element]) }
            }
        }
    }
}
