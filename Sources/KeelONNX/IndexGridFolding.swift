import KeelIR

/// An integer tensor whose every element is an affine function of its position:
/// `offset + Σ strides[k]·index[k]`, over a shape that may hold the batch. PyTorch's dynamo
/// exporter writes `as_strided` as a Gather whose indices are built this way per batch
/// (Range(0, N)·768 unsqueezed, plus an arange(768) constant): the importer cannot list the
/// elements, but it can tell when they walk the data in order, which makes the Gather a Reshape.
struct IndexGrid: Equatable {
    var shape: [Dim]
    var strides: [Int64]
    var offset: Int64

    /// A constant integer tensor that is affine in its position (checked element by element).
    init?(_ data: TensorData) {
        guard [.int64, .int32].contains(data.dtype), data.elementCount >= 1, data.elementCount <= 1 << 20 else { return nil }
        let values = data.int64s()
        let extents = data.shape
        var strides = [Int64](repeating: 0, count: extents.count)
        var step = 1
        for axis in extents.indices.reversed() {
            if extents[axis] > 1 { strides[axis] = values[step] - values[0] }
            step *= extents[axis]
        }
        self.init(shape: extents.map { .known($0) }, strides: strides, offset: values[0])
        var position = [Int](repeating: 0, count: extents.count)
        for value in values {
            guard value == element(at: position) else { return nil }
            for axis in extents.indices.reversed() {
                position[axis] += 1
                if position[axis] < extents[axis] { break }
                position[axis] = 0
            }
        }
    }

    init(shape: [Dim], strides: [Int64], offset: Int64) {
        self.shape = shape
        self.strides = strides
        self.offset = offset
    }

    private func element(at position: [Int]) -> Int64 {
        zip(position, strides).reduce(offset) { $0 + Int64($1.0) * $1.1 }
    }

    /// NumPy broadcasting of two grids' shapes; nil when they disagree.
    func adding(_ other: IndexGrid) -> IndexGrid? {
        let rank = max(shape.count, other.shape.count)
        func padded(_ grid: IndexGrid) -> ([Dim], [Int64]) {
            let missing = rank - grid.shape.count
            return (Array(repeating: .known(1), count: missing) + grid.shape, Array(repeating: 0, count: missing) + grid.strides)
        }
        let (leftShape, leftStrides) = padded(self), (rightShape, rightStrides) = padded(other)
        var result = IndexGrid(shape: [], strides: [], offset: offset + other.offset)
        for axis in 0..<rank {
            let (a, b) = (leftShape[axis], rightShape[axis])
            guard a == b || a == .known(1) || b == .known(1) else { return nil }
            result.shape.append(a == .known(1) ? b : a)
            result.strides.append((a == .known(1) ? 0 : leftStrides[axis]) + (b == .known(1) ? 0 : rightStrides[axis]))
        }
        return result
    }

    /// Whether the elements are 0, 1, 2... in row-major order of the shape (strides from known
    /// extents; at most the leading extent may be a run-time size).
    var isRowMajorIota: Bool {
        guard offset == 0 else { return false }
        var expected: Int64 = 1
        for axis in shape.indices.reversed() {
            if shape[axis] != .known(1) && strides[axis] != expected { return false }
            guard let extent = shape[axis].value else { return axis == 0 }
            expected *= Int64(extent)
        }
        return true
    }
}

extension GraphImporter {
    /// Folds the index-grid arithmetic (Range to a run-time size, Mul by a number, Add,
    /// Unsqueeze) and the Gather it feeds when that Gather only reshapes. Returns false when the
    /// node is not part of such a computation.
    func foldIndexGrid(_ context: NodeContext) throws -> Bool {
        let node = context.node
        func grid(_ index: Int) -> IndexGrid? {
            guard context.hasInput(index), let value = values[node.inputs[index]] else { return nil }
            if let grid = value.grid { return grid }
            return context.constantData(index).flatMap(IndexGrid.init)
        }
        let hasGrid = node.inputs.contains { !$0.isEmpty && values[$0]?.grid != nil }
        func define(_ result: IndexGrid) {
            values[node.outputs[0]] = ImportedValue(irName: nil, known: nil, shape: result.shape.map(Optional.some), grid: result)
        }
        switch node.opType {
        case "Range":
            // Range(0, N, 1) with N a run-time size: the other ranges fold as numbers.
            guard let start = context.constantData(0)?.int64s(), start == [0],
                  let delta = context.constantData(2)?.int64s(), delta == [1],
                  let limit = values[node.inputs[1]]?.known?.elements, limit.count == 1, limit[0].isPositiveSize,
                  let extent = limit[0].dim else { return false }
            define(IndexGrid(shape: [extent], strides: [1], offset: 0))
            return true
        case "Mul" where hasGrid:
            guard let factors = [context.constantData(0), context.constantData(1)].compactMap({ $0 }).first?.int64s(), factors.count == 1,
                  let input = grid(0) ?? grid(1) else { return false }
            define(IndexGrid(shape: input.shape, strides: input.strides.map { $0 * factors[0] }, offset: input.offset * factors[0]))
            return true
        case "Add" where hasGrid:
            guard let left = grid(0), let right = grid(1), let sum = left.adding(right) else {
                throw context.fail("adds index tensors whose shapes do not broadcast, or one that is not affine in its position")
            }
            define(sum)
            return true
        case "Cast" where hasGrid:
            guard let input = grid(0), [6, 7].contains(try context.int("to", default: 0)) else { return false }
            define(input)
            return true
        case "Unsqueeze" where hasGrid:
            guard let input = grid(0), let axes = opset >= 13 ? try context.constantInts(1) : try context.ints("axes") else { return false }
            var result = input
            let rank = input.shape.count + axes.count
            for axis in axes.map({ $0 < 0 ? $0 + rank : $0 }).sorted() {
                guard axis >= 0, axis <= result.shape.count else { throw context.fail("axis \(axis) out of range") }
                result.shape.insert(.known(1), at: axis)
                result.strides.insert(0, at: axis)
            }
            define(result)
            return true
        case "Gather" where hasGrid:
            // data[indices] with indices 0, 1, 2... over the whole of a flat tensor: a reshape.
            guard let indices = grid(1), try context.int("axis", default: 0) == 0, indices.isRowMajorIota,
                  let data = context.shape(0), data.count == 1, let total = data[0],
                  let count = DimProduct(indices.shape), let available = DimProduct([total]), count == available,
                  indices.shape.dropFirst().allSatisfy({ $0.value != nil }) else {
                throw context.fail("gathers with indices computed per batch that do not walk the data in order; only that case is supported")
            }
            let target = indices.shape.enumerated().map { axis, dim in axis == 0 && dim.value == nil ? -1 : dim.value ?? -1 }
            context.emit(.reshape, [try context.input(0)], ["shape": .ints(target)], shape: indices.shape.map(Optional.some))
            return true
        default:
            if hasGrid { throw context.fail("computes with index tensors built per batch, which Keel folds only into a Gather that reshapes") }
            return false
        }
    }
}
