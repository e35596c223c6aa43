/// Multi-head scaled dot-product attention read straight from the token rows the projections
/// wrote: each (sequence, head) is Q_h·K_hᵀ on Keel's panel GEMM with Q_h read in place (a
/// strided left operand), a row softmax while the scores are still in cache, and P·V_h with V_h
/// read in place (a strided right operand), written into the head's columns of the output rows.
/// Only K_hᵀ is copied (scaled on the way), a [head size × key tokens] block per head: the
/// exporters' head-split transposes, gathers and scale multiplies never materialise. An additive
/// bias on the scores (Swin's relative positions and shifted-window masks) rides on the first
/// product's epilogue, so it costs no pass of its own either. Cosine attention (Swin V2) divides
/// each q and k row by its norm on the copies: Kᵀ's per key token, Q_h's into a block of its own.
import CSIMDKernels
import Foundation

public enum Attention {
    /// Where q, k and v live and how the heads divide them; see the IR's `attention` op.
    public struct Shape: Equatable, Sendable {
        public var sequences: Int
        public var queryTokens: Int
        public var keyTokens: Int
        public var heads: Int
        public var headSize: Int
        public var scale: Float
        /// Row widths of q, k and v, and the column of head 0 in each.
        public var columns: [Int]
        public var offsets: [Int]
        /// Rows ordered [tokens, sequences] rather than [sequences, tokens].
        public var sequenceFirst: Bool
        /// Per-head factors on top of `scale`; empty for none.
        public var headScales: [Float]
        /// When set, q and k rows are divided by max(‖row‖₂, this) before the product.
        public var normalizingEpsilon: Float?

        public init(sequences: Int, queryTokens: Int, keyTokens: Int, heads: Int, headSize: Int, scale: Float,
                    columns: [Int], offsets: [Int], sequenceFirst: Bool, headScales: [Float] = [],
                    normalizingEpsilon: Float? = nil) {
            self.sequences = sequences
            self.queryTokens = queryTokens
            self.keyTokens = keyTokens
            self.heads = heads
            self.headSize = headSize
            self.scale = scale
            self.columns = columns
            self.offsets = offsets
            self.sequenceFirst = sequenceFirst
            self.headScales = headScales
            self.normalizingEpsilon = normalizingEpsilon
        }

        /// What head h's scores are multiplied by.
        func scale(ofHead head: Int) -> Float { headScales.isEmpty ? scale : scale * headScales[head] }

        var width: Int { heads * headSize }

        /// Floats in one sequence's bias: a [queryTokens, keyTokens] block per head.
        public var biasPerSequence: Int { heads * queryTokens * keyTokens }

        /// Element offset of (sequence, head)'s first value in operand `index` (0 q, 1 k, 2 v, 3
        /// the output), and the distance between its consecutive tokens.
        func start(_ index: Int, sequence: Int, head: Int) -> (offset: Int, tokenStride: Int) {
            let columns = index == 3 ? width : self.columns[index]
            let offset = index == 3 ? 0 : offsets[index]
            let tokens = index == 1 || index == 2 ? keyTokens : queryTokens
            let firstRow = sequenceFirst ? sequence : sequence * tokens
            let tokenStride = sequenceFirst ? sequences * columns : columns
            return (firstRow * columns + offset + head * headSize, tokenStride)
        }
    }

    /// Added to scale·q_h·k_hᵀ before the softmax: [period, heads, query tokens, key tokens], sequence
    /// s taking block s mod period (Swin's windows repeat their masks image after image).
    public struct Bias {
        public var values: UnsafeBufferPointer<Float>
        public var period: Int

        public init(values: UnsafeBufferPointer<Float>, period: Int) {
            self.values = values
            self.period = period
        }
    }

    public static func apply(q: UnsafeBufferPointer<Float>, k: UnsafeBufferPointer<Float>, v: UnsafeBufferPointer<Float>,
                             bias: Bias? = nil, output: UnsafeMutableBufferPointer<Float>, shape: Shape,
                             context: KernelContext = .singleThreaded) throws {
        let name = "attention"
        try require(shape.sequences >= 0 && shape.queryTokens >= 0 && shape.keyTokens >= 1 && shape.heads >= 1
                    && shape.headSize >= 1 && shape.columns.count == 3 && shape.offsets.count == 3, name,
                    "invalid geometry \(shape)")
        for (index, buffer) in [q, k, v].enumerated() {
            let tokens = index == 0 ? shape.queryTokens : shape.keyTokens
            try require(shape.offsets[index] + shape.width <= shape.columns[index], name,
                        "head columns exceed the \(shape.columns[index]) columns of operand \(index)")
            try requireCapacity(buffer.count, try elementCount([shape.sequences, tokens, shape.columns[index]], name), name,
                                ["q", "k", "v"][index])
        }
        try requireCapacity(output.count, try elementCount([shape.sequences, shape.queryTokens, shape.width], name), name, "output")
        try require(shape.headScales.isEmpty || shape.headScales.count == shape.heads, name,
                    "\(shape.headScales.count) head scales for \(shape.heads) heads")
        if let bias {
            try require(bias.period >= 1 && shape.sequences % bias.period == 0, name,
                        "a bias repeating every \(bias.period) sequences does not tile \(shape.sequences) sequences")
            try requireCapacity(bias.values.count, try elementCount([bias.period, shape.biasPerSequence], name), name, "bias")
        }
        guard shape.sequences > 0, shape.queryTokens > 0, let queries = q.baseAddress, let keys = k.baseAddress,
              let values = v.baseAddress, let destination = output.baseAddress else { return }
        let (tokens, keyTokens, headSize) = (shape.queryTokens, shape.keyTokens, shape.headSize)
        let work = Double(tokens) * Double(keyTokens) * Double(headSize) * 2
        let tasks = shape.sequences * shape.heads
        let chunkContext = work * Double(tasks) < 262_144 ? KernelContext.singleThreaded : context
        let gemm = KernelTable.current.sgemm
        let transpose = KernelTable.current.scaled_transpose
        chunkContext.forEachBalancedChunk(tasks, minimumChunk: 1) { range, _ in
            let keysTransposedBuffer = CacheLineMemory.allocateFloats(headSize * keyTokens)
            let scoresBuffer = CacheLineMemory.allocateFloats(tokens * keyTokens)
            // Normalised rows of Q_h and K_h, for cosine attention only.
            let normalizing = shape.normalizingEpsilon != nil
            let queriesBuffer = CacheLineMemory.allocateFloats(normalizing ? tokens * headSize : 0)
            let keysBuffer = CacheLineMemory.allocateFloats(normalizing ? keyTokens * headSize : 0)
            defer {
                keysTransposedBuffer.deallocate(); scoresBuffer.deallocate()
                queriesBuffer.deallocate(); keysBuffer.deallocate()
            }
            guard let keysTransposed = keysTransposedBuffer.baseAddress, let scores = scoresBuffer.baseAddress else { return }
            for task in range {
                let (sequence, head) = task.quotientAndRemainder(dividingBy: shape.heads)
                var query = shape.start(0, sequence: sequence, head: head)
                var key = shape.start(1, sequence: sequence, head: head)
                let value = shape.start(2, sequence: sequence, head: head)
                let result = shape.start(3, sequence: sequence, head: head)
                var (queryRows, keyRows) = (queries, keys)
                var keyScale = shape.scale(ofHead: head)
                if let epsilon = shape.normalizingEpsilon, let normalizedQueries = queriesBuffer.baseAddress,
                   let normalizedKeys = keysBuffer.baseAddress {
                    normalizeRows(tokens, headSize, queries + query.offset, query.tokenStride, epsilon: epsilon, scale: 1,
                                  into: normalizedQueries)
                    normalizeRows(keyTokens, headSize, keys + key.offset, key.tokenStride, epsilon: epsilon, scale: keyScale,
                                  into: normalizedKeys)
                    (queryRows, keyRows) = (UnsafePointer(normalizedQueries), UnsafePointer(normalizedKeys))
                    query = (offset: 0, tokenStride: headSize)
                    key = (offset: 0, tokenStride: headSize)
                    keyScale = 1
                }
                // Kᵀ scaled: the scale rides on the one copy there is.
                if let transpose {
                    transpose(keyTokens, headSize, keyRows + key.offset, key.tokenStride, keyScale, keysTransposed)
                } else {
                    for token in 0..<keyTokens {
                        let row = keyRows + key.offset + token * key.tokenStride
                        for column in 0..<headSize { keysTransposed[column * keyTokens + token] = keyScale * row[column] }
                    }
                }
                let scoreBias = bias.flatMap { bias in
                    bias.values.baseAddress.map { $0 + ((sequence % bias.period) * shape.heads + head) * tokens * keyTokens }
                }
                if let gemm {
                    let left = keel_gemm_left(base: queryRows + query.offset, row_step: query.tokenStride, depth_step: 1,
                                              block_rows: 0, block_step: 0)
                    let right = PanelGEMM.rowMajorRight(keysTransposed, depthStep: keyTokens)
                    if scoreBias == nil {
                        gemm(tokens, keyTokens, headSize, left, right, scores, keyTokens, nil)
                    } else {
                        var epilogue = KernelEpilogue(bias: nil, residual: scoreBias, activation: .identity)
                            .description(residualStride: keyTokens)
                        gemm(tokens, keyTokens, headSize, left, right, scores, keyTokens, &epilogue)
                    }
                } else {
                    multiply(tokens, keyTokens, headSize, left: queryRows + query.offset, leftStride: query.tokenStride,
                             right: keysTransposed, rightStride: keyTokens, into: scores, outputStride: keyTokens)
                    if let scoreBias {
                        for index in 0..<tokens * keyTokens { scores[index] += scoreBias[index] }
                    }
                }
                // Sized to the scores by construction, so the softmax has nothing to refuse.
                let rows = UnsafeMutableBufferPointer(start: scores, count: tokens * keyTokens)
                try? Softmax.apply(input: UnsafeBufferPointer(rows), output: rows, outer: tokens, axis: keyTokens, inner: 1)
                if let gemm {
                    let left = keel_gemm_left(base: scores, row_step: keyTokens, depth_step: 1, block_rows: 0, block_step: 0)
                    let right = PanelGEMM.rowMajorRight(values + value.offset, depthStep: value.tokenStride)
                    gemm(tokens, headSize, keyTokens, left, right, destination + result.offset, result.tokenStride, nil)
                } else {
                    multiply(tokens, headSize, keyTokens, left: scores, leftStride: keyTokens, right: values + value.offset,
                             rightStride: value.tokenStride, into: destination + result.offset, outputStride: result.tokenStride)
                }
            }
        }
    }

    /// target row r = scale · row r / max(‖row r‖₂, epsilon) for `rows` rows of `width` values,
    /// `stride` apart in `source`, contiguous in `target`; in 16 lanes, summed by halves (SIMD's
    /// `addProduct` and `sum()` ran lane by lane here: 5 µs for a 64×32 block, 0.5 this way).
    private static func normalizeRows(_ rows: Int, _ width: Int, _ source: UnsafePointer<Float>, _ stride: Int,
                                      epsilon: Float, scale: Float, into target: UnsafeMutablePointer<Float>) {
        let vectorWidth = width - width % 16
        for row in 0..<rows {
            let values = source + row * stride
            let output = target + row * width
            var lanes = SIMD16<Float>()
            var column = 0
            while column < vectorWidth {
                let vector = UnsafeRawPointer(values + column).loadUnaligned(as: SIMD16<Float>.self)
                lanes += vector * vector
                column += 16
            }
            var sum = lanes.sumByHalves
            while column < width {
                sum += values[column] * values[column]
                column += 1
            }
            let factor = scale / max(sum.squareRoot(), epsilon)
            let factors = SIMD16<Float>(repeating: factor)
            column = 0
            while column < vectorWidth {
                let vector = UnsafeRawPointer(values + column).loadUnaligned(as: SIMD16<Float>.self)
                UnsafeMutableRawPointer(output + column).storeBytes(of: vector * factors, as: SIMD16<Float>.self)
                column += 16
            }
            while column < width {
                output[column] = values[column] * factor
                column += 1
            }
        }
    }

    /// C[m×n] = A[m×k]·B[k×n], rows of each `stride` apart: the path for CPUs without a GEMM body.
    private static func multiply(_ m: Int, _ n: Int, _ k: Int, left: UnsafePointer<Float>, leftStride: Int,
                                 right: UnsafePointer<Float>, rightStride: Int, into output: UnsafeMutablePointer<Float>,
                                 outputStride: Int) {
        for row in 0..<m {
            let target = output + row * outputStride
            for column in 0..<n { target[column] = 0 }
            for depth in 0..<k {
                let factor = left[row * leftStride + depth]
                let source = right + depth * rightStride
                for column in 0..<n { target[column] += factor * source[column] }
            }
        }
    }
}
