/// Index arithmetic the reference evaluations share.
public enum ReferenceLoops {
    /// C-order strides of `shape`.
    public static func strides(_ shape: [Int]) -> [Int] {
        var result = [Int](repeating: 1, count: shape.count)
        for axis in shape.indices.dropLast().reversed() { result[axis] = result[axis + 1] * shape[axis + 1] }
        return result
    }

    /// Strides that read `shape` broadcast onto `target` (0 along broadcast axes).
    static func broadcastStrides(of shape: [Int], onto target: [Int]) throws -> [Int] {
        guard shape.count <= target.count else { throw ReferenceError.shapeMismatch }
        let padded = [Int](repeating: 1, count: target.count - shape.count) + shape
        guard zip(padded, target).allSatisfy({ $0 == $1 || $0 == 1 }) else { throw ReferenceError.shapeMismatch }
        let paddedStrides = strides(padded)
        return padded.indices.map { padded[$0] == 1 ? 0 : paddedStrides[$0] }
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
}
