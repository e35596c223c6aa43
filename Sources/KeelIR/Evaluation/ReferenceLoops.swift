/// Index arithmetic the reference evaluations share.
public enum ReferenceLoops {
    /// C-order strides of `shape`.
    public static func strides(_ shape: [Int]) -> [Int] {
        var result = [Int](repeating: 1, count: shape.count)
        for axis in shape.indices.dropLast().reversed() { result[axis] = result[axis + 1] * shape[axis + 1] }
        return result
    }

    /// Strides that read `shape` broadcast onto `target` (0 along broadcast axes).
    public static func broadcastStrides(of shape: [Int], onto target: [Int]) throws -> [Int] {
        guard shape.count <= target.count else { throw ReferenceError.shapeMismatch }
        let padded = [Int](repeating: 1, count: target.count - shape.count) + shape
        guard zip(padded, target).allSatisfy({ $0 == $1 || $0 == 1 }) else { throw ReferenceError.shapeMismatch }
        let paddedStrides = strides(padded)
        return padded.indices.map { padded[$0] == 1 ? 0 : paddedStrides[$0] }
    }

    /// Multiply-adds a product may take to be evaluated at compile time. Swin V2's relative-position
    /// MLP (a few million, on a constant coordinate table) folds; a layer's product on real weights
    /// is larger and stays a layer, which the runtime runs far faster than these Double loops.
    public static let maximumFoldedMultiplies = 1 << 24

    /// ONNX MatMul: a [batch..., m, k] × b [batch..., k, n], the batch axes broadcast as NumPy
    /// does, a rank-1 operand promoted (a row for `a`, a column for `b`).
    static func matmul(_ a: ReferenceTensor, _ b: ReferenceTensor) throws -> [Double] {
        let left = a.shape.count == 1 ? [1] + a.shape : a.shape, right = b.shape.count == 1 ? b.shape + [1] : b.shape
        guard left.count >= 2, right.count >= 2 else { throw ReferenceError.shapeMismatch }
        let (m, k, n) = (left[left.count - 2], left[left.count - 1], right[right.count - 1])
        guard right[right.count - 2] == k else { throw ReferenceError.shapeMismatch }
        let (leftBatch, rightBatch) = (Array(left.dropLast(2)), Array(right.dropLast(2)))
        let rank = max(leftBatch.count, rightBatch.count)
        let paddedLeft = [Int](repeating: 1, count: rank - leftBatch.count) + leftBatch
        let paddedRight = [Int](repeating: 1, count: rank - rightBatch.count) + rightBatch
        let batch = zip(paddedLeft, paddedRight).map { Swift.max($0, $1) }
        let (leftStrides, rightStrides) = (try broadcastStrides(of: leftBatch, onto: batch),
                                           try broadcastStrides(of: rightBatch, onto: batch))
        guard batch.reduce(1, *) * m * k * n <= maximumFoldedMultiplies else { throw ReferenceError.tooLarge }
        var result: [Double] = []
        result.reserveCapacity(batch.reduce(1, *) * m * n)
        forEachIndex(batch) { index in
            let leftBase = zip(index, leftStrides).reduce(0) { $0 + $1.0 * $1.1 } * m * k
            let rightBase = zip(index, rightStrides).reduce(0) { $0 + $1.0 * $1.1 } * k * n
            for row in 0..<m {
                for column in 0..<n {
                    var total = 0.0
                    for depth in 0..<k { total += a.values[leftBase + row * k + depth] * b.values[rightBase + depth * n + column] }
                    result.append(total)
                }
            }
        }
        return result
    }

    /// Visits every index of `shape` in C order, handing each coordinate list to `body`.
    public static func forEachIndex(_ shape: [Int], _ body: ([Int]) -> Void) {
        let count = shape.reduce(1, *)
        guard count > 0 else { return }
        var index = [Int](repeating: 0, count: shape.count)
        for _ in 0..<count {
            body(index)
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < shape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
    }

    /// `input` with its axes permuted by `perm`.
    static func transpose(_ input: ReferenceTensor, perm: [Int]) throws -> [Double] {
        guard perm.sorted() == Array(input.shape.indices) else { throw ReferenceError.shapeMismatch }
        let inputStrides = strides(input.shape)
        var result: [Double] = []
        result.reserveCapacity(input.values.count)
        forEachIndex(perm.map { input.shape[$0] }) { index in
            var offset = 0
            for (axis, position) in index.enumerated() { offset += position * inputStrides[perm[axis]] }
            result.append(input.values[offset])
        }
        return result
    }

    /// The elements of `input` at first + i·step along each axis, for every index i of `outputShape` (Slice).
    static func strided(_ input: ReferenceTensor, first: [Int], step: [Int], outputShape: [Int]) throws -> [Double] {
        guard first.count == input.shape.count, step.count == first.count, outputShape.count == first.count else {
            throw ReferenceError.shapeMismatch
        }
        for axis in first.indices where outputShape[axis] > 0 {
            let last = first[axis] + (outputShape[axis] - 1) * step[axis]
            guard (0..<input.shape[axis]).contains(first[axis]), (0..<input.shape[axis]).contains(last) else {
                throw ReferenceError.shapeMismatch
            }
        }
        let inputStrides = strides(input.shape)
        var result: [Double] = []
        result.reserveCapacity(outputShape.reduce(1, *))
        forEachIndex(outputShape) { index in
            var offset = 0
            for axis in index.indices { offset += (first[axis] + index[axis] * step[axis]) * inputStrides[axis] }
            result.append(input.values[offset])
        }
        return result
    }

    /// The slices of `input` along `axis` that `indices` pick (negative ones count from the end).
    static func gather(_ input: ReferenceTensor, indices: [Double], axis: Int) throws -> [Double] {
        let extent = input.shape[axis]
        let inner = input.shape[(axis + 1)...].reduce(1, *)
        var result: [Double] = []
        for block in 0..<input.shape[..<axis].reduce(1, *) {
            for value in indices {
                let index = try resolvedIndex(value, extent: extent)
                let start = (block * extent + index) * inner
                result += input.values[start..<(start + inner)]
            }
        }
        return result
    }

    /// An index into an axis of `extent`, negative ones counting from the end; throws outside it.
    private static func resolvedIndex(_ value: Double, extent: Int) throws -> Int {
        guard let raw = Int(exactly: value), raw >= -extent, raw < extent else { throw ReferenceError.shapeMismatch }
        return raw < 0 ? raw + extent : raw
    }

    /// ONNX ScatterND: a copy of `data` where each k-tuple of `indices` names an element or slice,
    /// combined with its piece of `updates` (`combine(old, update)`), tuples in order.
    static func scatterND(_ data: ReferenceTensor, indices: ReferenceTensor, updates: ReferenceTensor,
                          combine: (Double, Double) -> Double) throws -> [Double] {
        guard let depth = indices.shape.last, depth <= data.shape.count else { throw ReferenceError.shapeMismatch }
        let tuples = indices.shape.dropLast().reduce(1, *)
        let piece = data.shape[depth...].reduce(1, *)
        guard updates.values.count == tuples * piece else { throw ReferenceError.shapeMismatch }
        let dataStrides = strides(data.shape)
        var result = data.values
        for tuple in 0..<tuples {
            var offset = 0
            for axis in 0..<depth {
                offset += try resolvedIndex(indices.values[tuple * depth + axis], extent: data.shape[axis]) * dataStrides[axis]
            }
            for element in 0..<piece {
                result[offset + element] = combine(result[offset + element], updates.values[tuple * piece + element])
            }
        }
        return result
    }

    /// `inputs` joined along `axis`.
    static func concat(_ inputs: [ReferenceTensor], axis: Int) -> [Double] {
        guard let first = inputs.first else { return [] }
        let outer = first.shape[..<axis].reduce(1, *)
        var result: [Double] = []
        for block in 0..<outer {
            for input in inputs {
                let chunk = input.shape[axis...].reduce(1, *)
                result += input.values[(block * chunk)..<((block + 1) * chunk)]
            }
        }
        return result
    }
}

/// Why a reference evaluation could not run (the caller then leaves the node unevaluated).
enum ReferenceError: Error {
    case shapeMismatch
    /// A product too large to evaluate at compile time (`ReferenceLoops.maximumFoldedMultiplies`).
    case tooLarge
    /// An evaluation this reference does not cover (a fused activation on a product).
    case notCovered
}
