/// The shared engine behind broadcasting, transpose, slice, pad and expand: every one of them
/// walks an output index space while each operand advances by its own strides (0 where it
/// broadcasts). Axes of extent 1 are dropped and adjacent axes that stay contiguous for every
/// operand are merged, so the innermost loop is as long as possible — a same-shape add or a
/// per-channel bias collapses to one or two flat loops without special-casing them.

/// An index space of `shape` with one stride vector per operand, after merging axes.
struct StridedSpace {
    /// Outer extents followed by the innermost extent (never empty).
    var shape: [Int]
    /// strides[operand][axis].
    var strides: [[Int]]

    init(shape original: [Int], strides originalStrides: [[Int]]) {
        var mergedShape: [Int] = []
        var merged = [[Int]](repeating: [], count: originalStrides.count)
        for axis in 0..<original.count where original[axis] != 1 {
            let extent = original[axis]
            if let last = mergedShape.last,
               originalStrides.indices.allSatisfy({ merged[$0][merged[$0].count - 1] == originalStrides[$0][axis] * extent }) {
                mergedShape[mergedShape.count - 1] = last * extent
                for operand in merged.indices { merged[operand][merged[operand].count - 1] = originalStrides[operand][axis] }
            } else {
                mergedShape.append(extent)
                for operand in merged.indices { merged[operand].append(originalStrides[operand][axis]) }
            }
        }
        if mergedShape.isEmpty {
            mergedShape = [original.contains(0) ? 0 : 1]
            merged = merged.map { _ in [0] }
        }
        shape = mergedShape
        strides = merged
    }

    var inner: Int { shape[shape.count - 1] }
    var rows: Int { shape.dropLast().reduce(1, *) }
    func innerStride(_ operand: Int) -> Int { strides[operand][shape.count - 1] }

    /// Element offset of the first element of `row` for `operand`.
    @inline(__always)
    func rowOffset(_ row: Int, operand: Int) -> Int {
        var remaining = row
        var offset = 0
        var axis = shape.count - 2
        while axis >= 0 {
            let extent = shape[axis]
            let index = remaining % extent
            remaining /= extent
            offset += index * strides[operand][axis]
            axis -= 1
        }
        return offset
    }

    /// Offset of element `index` (counted over the whole space) for `operand`.
    @inline(__always)
    func elementOffset(_ index: Int, operand: Int) -> Int {
        let row = index / inner
        return rowOffset(row, operand: operand) + (index - row * inner) * innerStride(operand)
    }

    /// Calls `body(rowStarts, columns)` over the whole space in parallel segments: whole rows when
    /// there are enough of them, otherwise slices of each long row. `rowStarts[operand]` is the
    /// operand's element offset of the row's first element.
    func forEachSegment(context: KernelContext, _ body: (_ rowStarts: UnsafePointer<Int>, _ columns: Range<Int>) -> Void) {
        let (rows, inner) = (self.rows, self.inner)
        guard rows > 0, inner > 0 else { return }
        if rows >= context.threads || inner < parallelGrain {
            context.forEachChunk(rows, minimumChunk: max(1, parallelGrain / inner)) { range in
                walkRows(range) { body($0, 0..<inner) }
            }
        } else {
            for row in 0..<rows {
                walkRows(row..<row + 1) { starts in
                    context.forEachChunk(inner, minimumChunk: parallelGrain) { columns in body(starts, columns) }
                }
            }
        }
    }

    /// Visits rows `range` in order with each operand's offset of the row's first element. The
    /// offsets advance by carrying through the outer axes, as an odometer does, instead of
    /// dividing the row number on every axis for every row: Swin's attention transposes copy
    /// rows of 32 floats, and those divisions cost more than the copy.
    private func walkRows(_ range: Range<Int>, _ visit: (UnsafePointer<Int>) -> Void) {
        guard !range.isEmpty else { return }
        let (axes, operands) = (shape.count - 1, strides.count)
        withUnsafeTemporaryAllocation(of: Int.self, capacity: operands + axes * (operands + 2)) { buffer in
            guard let starts = buffer.baseAddress else { return }
            // starts[operand], then per outer axis: its index, its extent and each operand's stride.
            let axisState = starts + operands
            var remaining = range.lowerBound
            for axis in stride(from: axes - 1, through: 0, by: -1) {
                let state = axisState + axis * (operands + 2)
                state[0] = remaining % shape[axis]
                state[1] = shape[axis]
                remaining /= shape[axis]
                for operand in 0..<operands { state[2 + operand] = strides[operand][axis] }
            }
            for operand in 0..<operands { starts[operand] = rowOffset(range.lowerBound, operand: operand) }
            for _ in range {
                visit(starts)
                var axis = axes - 1
                while axis >= 0 {
                    let state = axisState + axis * (operands + 2)
                    state[0] += 1
                    if state[0] < state[1] {
                        for operand in 0..<operands { starts[operand] += state[2 + operand] }
                        break
                    }
                    // Back to index 0 on this axis, one step on the next outer one.
                    for operand in 0..<operands { starts[operand] -= (state[1] - 1) * state[2 + operand] }
                    state[0] = 0
                    axis -= 1
                }
            }
        }
    }
}

/// Strides of an operand of `shape` broadcast against `target` (right-aligned, NumPy rules):
/// 0 on axes where the operand is missing or has extent 1.
func broadcastStrides(of shape: [Int], to target: [Int]) -> [Int] {
    let own = contiguousStrides(shape)
    let lead = target.count - shape.count
    return target.indices.map { axis in
        let operandAxis = axis - lead
        guard operandAxis >= 0, shape[operandAxis] != 1 else { return 0 }
        return own[operandAxis]
    }
}

/// Copies a strided source view into a strided destination view of the same extents.
func stridedCopy(from source: UnsafePointer<Float>, sourceStrides: [Int], to destination: UnsafeMutablePointer<Float>,
                 destinationStrides: [Int], shape: [Int], context: KernelContext) {
    let space = StridedSpace(shape: shape, strides: [destinationStrides, sourceStrides])
    let (toStride, fromStride) = (space.innerStride(0), space.innerStride(1))
    if toStride == 1 && fromStride > 1,
       let axis = (0..<(space.shape.count - 1)).first(where: { space.strides[1][$0] == 1 }) {
        blockedTransposeCopy(space, axis: axis, from: source, to: destination, context: context)
        return
    }
    space.forEachSegment(context: context) { starts, columns in
        let to = destination + starts[0] + columns.lowerBound * toStride
        let from = source + starts[1] + columns.lowerBound * fromStride
        let count = columns.count
        if toStride == 1 && fromStride == 1 {
            to.update(from: from, count: count)
        } else if toStride == 1 && fromStride == 0 {
            to.update(repeating: from.pointee, count: count)
        } else {
            for index in 0..<count { to[index * toStride] = from[index * fromStride] }
        }
    }
}

/// A transpose-like copy: the destination is contiguous along the last axis while the source is
/// contiguous along `axis`. Copying square tiles lets each source cache line serve a whole tile
/// row instead of being fetched once per destination row.
private func blockedTransposeCopy(_ space: StridedSpace, axis: Int, from source: UnsafePointer<Float>,
                                  to destination: UnsafeMutablePointer<Float>, context: KernelContext) {
    let tile = 32
    let last = space.shape.count - 1
    let (rows, columns) = (space.shape[axis], space.shape[last])
    let (toRowStride, fromColumnStride) = (space.strides[0][axis], space.strides[1][last])
    // The remaining axes index independent planes.
    var planeShape = space.shape
    var planeStrides = space.strides
    planeShape.remove(at: last)
    planeShape.remove(at: axis)
    for operand in planeStrides.indices {
        planeStrides[operand].remove(at: last)
        planeStrides[operand].remove(at: axis)
    }
    let planes = StridedSpace(shape: planeShape, strides: planeStrides)
    let planeCount = planeShape.reduce(1, *)
    let rowTiles = (rows + tile - 1) / tile
    context.forEachChunk(planeCount * rowTiles, minimumChunk: max(1, parallelGrain / (tile * columns))) { range in
        for item in range {
            let plane = item / rowTiles
            let rowStart = (item - plane * rowTiles) * tile
            let rowEnd = min(rowStart + tile, rows)
            let to = destination + planes.elementOffset(plane, operand: 0)
            let from = source + planes.elementOffset(plane, operand: 1)
            // Few destination columns (a PyTorch model's 3-channel input turned NHWC): each
            // column a contiguous run of the source, rather than tiles of a few elements a row
            // (3×224×224 on one Zen 3 core: 0.15 → 0.09 ms).
            if columns <= 4 {
                for column in 0..<columns {
                    let origin = from + column * fromColumnStride
                    for row in rowStart..<rowEnd { to[row &* toRowStride &+ column] = origin[row] }
                }
                continue
            }
            for columnStart in stride(from: 0, to: columns, by: tile) {
                let columnEnd = min(columnStart + tile, columns)
                for row in rowStart..<rowEnd {
                    let line = to + row * toRowStride
                    let origin = from + row
                    for column in columnStart..<columnEnd { line[column] = origin[column * fromColumnStride] }
                }
            }
        }
    }
}
