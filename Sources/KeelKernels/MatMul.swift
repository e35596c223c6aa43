/// NumPy/ONNX MatMul: the last two axes multiply, leading (batch) axes broadcast. When B's batch is
/// fully broadcast and A is contiguous, all of A's matrices stack into one tall GEMM, which is
/// both faster and the common case (activations × weights). Otherwise (attention's per-head
/// Q·Kᵀ and P·V) the batch's small products run on Keel's panel GEMM, B read in place, each
/// thread taking whole matrices: one OpenBLAS call per head spent more on its own threading and
/// packing than on the 197×197×64 product.
import CSIMDKernels

public enum MatMul {
    /// The output shape of `a @ b` with NumPy rules (rank-1 operands are promoted then squeezed).
    public static func outputShape(a: [Int], b: [Int]) throws -> [Int] {
        try plan(a: a, b: b).outputShape
    }

    /// output = a @ b with NumPy broadcasting of the batch axes.
    public static func apply(a: UnsafeBufferPointer<Float>, aShape: [Int], b: UnsafeBufferPointer<Float>,
                             bShape: [Int], output: UnsafeMutableBufferPointer<Float>,
                             context: KernelContext = .singleThreaded) throws {
        let name = "matmul"
        let plan = try plan(a: aShape, b: bShape)
        try requireCapacity(a.count, try elementCount(aShape, name), name, "a")
        try requireCapacity(b.count, try elementCount(bShape, name), name, "b")
        let outputCount = try elementCount(plan.outputShape, name)
        try requireCapacity(output.count, outputCount, name, "output")
        try requireBLASExtents(plan.m, plan.n, plan.k, plan.batchCount * plan.m, kernel: name)
        guard outputCount > 0, let destination = output.baseAddress else { return }
        let left = a.baseAddress ?? UnsafePointer(destination)
        let right = b.baseAddress ?? UnsafePointer(destination)
        let (m, n, k) = (plan.m, plan.n, plan.k)

        if plan.bBatchStrides.allSatisfy({ $0 == 0 }) && plan.aIsContiguousBatch {
            sgemm(transposeA: false, transposeB: false, m: plan.batchCount * m, n: n, k: k,
                  a: left, lda: k, b: right, ldb: n, c: destination, ldc: n, context: context)
            return
        }
        let offsets = plan.matrixOffsets
        if let kernel = KernelTable.current.sgemm {
            context.forEachChunk(plan.batchCount, minimumChunk: 1) { batches in
                for batch in batches {
                    let (aOffset, bOffset) = offsets[batch]
                    let a = keel_gemm_left(base: left + aOffset * m * k, row_step: k, depth_step: 1, block_rows: 0,
                                           block_step: 0)
                    let b = PanelGEMM.rowMajorRight(right + bOffset * k * n, depthStep: n)
                    kernel(m, n, k, a, b, destination + batch * m * n, n, nil)
                }
            }
            return
        }
        for (batch, (aOffset, bOffset)) in offsets.enumerated() {
            sgemm(transposeA: false, transposeB: false, m: m, n: n, k: k,
                  a: left + aOffset * m * k, lda: k, b: right + bOffset * k * n, ldb: n,
                  c: destination + batch * m * n, ldc: n, context: context)
        }
    }

    /// Batch geometry: strides are in matrices (not elements), 0 where an operand broadcasts.
    struct Plan {
        var m = 0, n = 0, k = 0
        var batchShape: [Int] = []
        var aBatchStrides: [Int] = []
        var bBatchStrides: [Int] = []
        var outputShape: [Int] = []
        var batchCount: Int { batchShape.reduce(1, *) }
        /// A's matrices are laid out one after another in output batch order.
        var aIsContiguousBatch = false

        /// For each output matrix in order, the indices of the A and B matrices it multiplies.
        var matrixOffsets: [(a: Int, b: Int)] {
            (0..<batchCount).map { matrix in
                var offset = (a: 0, b: 0)
                var remainder = matrix
                for axis in batchShape.indices.reversed() {
                    let (rest, position) = remainder.quotientAndRemainder(dividingBy: batchShape[axis])
                    offset.a += position * aBatchStrides[axis]
                    offset.b += position * bBatchStrides[axis]
                    remainder = rest
                }
                return offset
            }
        }
    }

    static func plan(a: [Int], b: [Int]) throws -> Plan {
        let name = "matmul"
        try require(!a.isEmpty && !b.isEmpty, name, "operands must have rank >= 1 (got \(a) and \(b))")
        try require((a + b).allSatisfy { $0 >= 0 }, name, "negative extent in \(a) or \(b)")
        let aMatrix = a.count == 1 ? [1, a[0]] : a
        let bMatrix = b.count == 1 ? [b[0], 1] : b
        var plan = Plan()
        plan.m = aMatrix[aMatrix.count - 2]
        plan.k = aMatrix[aMatrix.count - 1]
        plan.n = bMatrix[bMatrix.count - 1]
        try require(bMatrix[bMatrix.count - 2] == plan.k, name, "inner extents differ: \(a) @ \(b)")
        let aBatch = Array(aMatrix.dropLast(2))
        let bBatch = Array(bMatrix.dropLast(2))
        let rank = max(aBatch.count, bBatch.count)
        let aPadded = [Int](repeating: 1, count: rank - aBatch.count) + aBatch
        let bPadded = [Int](repeating: 1, count: rank - bBatch.count) + bBatch
        let aStrides = contiguousStrides(aPadded)
        let bStrides = contiguousStrides(bPadded)
        for axis in 0..<rank {
            let (left, right) = (aPadded[axis], bPadded[axis])
            try require(left == right || left == 1 || right == 1, name, "batch extents do not broadcast: \(a) @ \(b)")
            plan.batchShape.append(left == 1 ? right : left)
            plan.aBatchStrides.append(left == 1 ? 0 : aStrides[axis])
            plan.bBatchStrides.append(right == 1 ? 0 : bStrides[axis])
        }
        plan.aIsContiguousBatch = aPadded == plan.batchShape
        plan.outputShape = plan.batchShape
        if a.count > 1 { plan.outputShape.append(plan.m) }
        if b.count > 1 { plan.outputShape.append(plan.n) }
        return plan
    }
}
