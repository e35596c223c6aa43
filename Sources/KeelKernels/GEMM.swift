/// Matrix products. Every GEMM in Keel goes through `sgemm` here so the threading (Keel's own
/// threads, one single-threaded OpenBLAS call each) and the 32-bit BLAS index limits are handled
/// in one place; `Dense` is the public layer on top.
import COpenBLAS
import CSIMDKernels

/// Row-major single-precision GEMM: C = op(A)·op(B) + beta·C, with op(A) m×k and op(B) k×n.
/// Callers validate extents first (`requireBLASExtents`), so the narrowing below cannot fail.
func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
           a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
           c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float = 0, context: KernelContext) {
    guard m > 0, n > 0 else { return }
    if k == 0 {
        // BLAS would leave C untouched; the mathematical product is zero.
        for row in 0..<m {
            let line = c + row * ldc
            for column in 0..<n { line[column] = beta == 0 ? 0 : beta * line[column] }
        }
        return
    }
    context.applyToBLAS()
    func multiply(rows: Range<Int>, columns: Range<Int>) {
        let aStart = transposeA ? a + rows.lowerBound : a + rows.lowerBound * lda
        let bStart = transposeB ? b + columns.lowerBound * ldb : b + columns.lowerBound
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(truncatingIfNeeded: rows.count), Int32(truncatingIfNeeded: columns.count),
                    Int32(truncatingIfNeeded: k), 1, aStart, Int32(truncatingIfNeeded: max(lda, 1)),
                    bStart, Int32(truncatingIfNeeded: max(ldb, 1)), beta,
                    c + rows.lowerBound * ldc + columns.lowerBound, Int32(truncatingIfNeeded: max(ldc, 1)))
    }
    // Each thread multiplies its own block of columns (or rows, when there are few columns) on a
    // single-threaded OpenBLAS call; every element is still one whole dot product over k.
    let columnBlocks = (n + gemmColumnBlock - 1) / gemmColumnBlock
    guard context.threads > 1, Double(m) * Double(n) * Double(k) >= gemmParallelWork else {
        return multiply(rows: 0..<m, columns: 0..<n)
    }
    if columnBlocks >= 2 * context.threads || m < 2 * context.threads {
        context.forEachChunk(columnBlocks, minimumChunk: 1) { blocks in
            multiply(rows: 0..<m, columns: (blocks.lowerBound * gemmColumnBlock)..<min(n, blocks.upperBound * gemmColumnBlock))
        }
    } else {
        context.forEachChunk(m, minimumChunk: 1) { rows in multiply(rows: rows, columns: 0..<n) }
    }
}

/// Column blocks a split GEMM hands out: whole AVX-512 registers of C.
private let gemmColumnBlock = 16
/// Multiply-adds below which a GEMM stays on one thread (a 64×64×64 product takes ~3 µs).
private let gemmParallelWork: Double = 262_144

/// C = A·B on the calling thread, with B packed in panels (`PanelLayout`) once ahead of time: for
/// the Winograd products, where OpenBLAS would repack a whole filter matrix for a few dozen rows
/// of A. CPUs without a SIMD path multiply panel by panel through OpenBLAS.
func panelPackedSGEMM(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: keel_gemm_right,
                      c: UnsafeMutablePointer<Float>, ldc: Int) {
    guard m > 0, n > 0, k > 0 else { return }
    let left = keel_gemm_left(base: a, row_step: lda, depth_step: 1, block_rows: 0, block_step: 0)
    if let kernel = KernelTable.current.sgemm { return kernel(m, n, k, left, b, c, ldc, nil) }
    PanelGEMM.multiplyWithBLAS(m: m, n: n, k: k, left: left, right: b, c: c, ldc: ldc, context: .singleThreaded)
}

/// OpenBLAS on Debian uses 32-bit indices; reject larger extents rather than truncating them.
func requireBLASExtents(_ extents: Int..., kernel: String) throws {
    for extent in extents {
        try require(extent >= 0 && extent <= Int(Int32.max), kernel, "extent \(extent) exceeds the BLAS index range")
    }
}

/// How a dense kernel is stored.
public enum DenseWeightLayout: Sendable, Equatable {
    /// `[in, out]`, as Keras stores Dense kernels.
    case inOut
    /// `[out, in]`, as ONNX Gemm with transB stores them.
    case outIn
}

public enum Dense {
    /// output[rows, outFeatures] = activation(input[rows, inFeatures] × kernel + bias + residual).
    /// `bias`, when given, holds `outFeatures` values, `residual` rows × outFeatures. A softmax
    /// activation is not fused here: run `Softmax.apply` on the output afterwards.
    /// An `inOut` kernel is read in place by Keel's panel GEMM with the epilogue fused; an `outIn`
    /// one goes through OpenBLAS.
    public static func apply(input: UnsafeBufferPointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int,
                             kernel: UnsafeBufferPointer<Float>, layout: DenseWeightLayout,
                             bias: UnsafeBufferPointer<Float>? = nil, residual: UnsafeBufferPointer<Float>? = nil,
                             activation: UnaryOperation = .identity, output: UnsafeMutableBufferPointer<Float>,
                             context: KernelContext = .singleThreaded) throws {
        try validate(input: input, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, bias: bias,
                     residual: residual, output: output)
        try requireCapacity(kernel.count, inFeatures * outFeatures, "dense", "kernel")
        guard rows > 0, outFeatures > 0, let destination = output.baseAddress else { return }
        let source = input.baseAddress ?? UnsafePointer(destination)
        let weights = kernel.baseAddress ?? UnsafePointer(destination)
        let epilogue = KernelEpilogue(bias: bias?.baseAddress, residual: residual?.baseAddress, activation: activation)
        if layout == .inOut,
           PanelGEMM.multiply(m: rows, n: outFeatures, k: inFeatures,
                              left: keel_gemm_left(base: source, row_step: inFeatures, depth_step: 1, block_rows: 0,
                                                    block_step: 0),
                              right: PanelGEMM.rowMajorRight(weights, depthStep: outFeatures),
                              c: destination, ldc: outFeatures, epilogue: epilogue, biasPerRow: false,
                              residualStride: outFeatures, context: context) {
            return
        }
        sgemm(transposeA: false, transposeB: layout == .outIn, m: rows, n: outFeatures, k: inFeatures,
              a: source, lda: inFeatures, b: weights, ldb: layout == .outIn ? inFeatures : outFeatures,
              c: destination, ldc: outFeatures, context: context)
        finishWithoutKernel(rows: rows, outFeatures: outFeatures, epilogue: epilogue, output: destination, context: context)
    }

    /// As above, with the kernel packed once into the panel GEMM's panels (`PanelDenseWeights`):
    /// no per-call repacking whichever layout the kernel came in, the epilogue fused.
    public static func apply(input: UnsafeBufferPointer<Float>, rows: Int, weights: PanelDenseWeights,
                             bias: UnsafeBufferPointer<Float>? = nil, residual: UnsafeBufferPointer<Float>? = nil,
                             activation: UnaryOperation = .identity, output: UnsafeMutableBufferPointer<Float>,
                             context: KernelContext = .singleThreaded) throws {
        let (inFeatures, outFeatures) = (weights.inFeatures, weights.outFeatures)
        try validate(input: input, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, bias: bias,
                     residual: residual, output: output)
        guard rows > 0, let destination = output.baseAddress else { return }
        let source = input.baseAddress ?? UnsafePointer(destination)
        let epilogue = KernelEpilogue(bias: bias?.baseAddress, residual: residual?.baseAddress, activation: activation)
        weights.withUnsafePackedValues { packed in
            guard let base = packed.baseAddress else { return }
            let left = keel_gemm_left(base: source, row_step: inFeatures, depth_step: 1, block_rows: 0, block_step: 0)
            let right = weights.filter.right(base, group: 0)
            if PanelGEMM.multiply(m: rows, n: outFeatures, k: inFeatures, left: left, right: right, c: destination,
                                  ldc: outFeatures, epilogue: epilogue, biasPerRow: false, residualStride: outFeatures,
                                  context: context) { return }
            PanelGEMM.multiplyWithBLAS(m: rows, n: outFeatures, k: inFeatures, left: left, right: right, c: destination,
                                       ldc: outFeatures, context: context)
            finishWithoutKernel(rows: rows, outFeatures: outFeatures, epilogue: epilogue, output: destination,
                                context: context)
        }
    }

    /// Throws unless the operands fit a rows × inFeatures × outFeatures product.
    private static func validate(input: UnsafeBufferPointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int,
                                 bias: UnsafeBufferPointer<Float>?, residual: UnsafeBufferPointer<Float>?,
                                 output: UnsafeMutableBufferPointer<Float>) throws {
        let name = "dense"
        try require(rows >= 0 && inFeatures >= 0 && outFeatures >= 0, name,
                    "negative extent (rows \(rows), in \(inFeatures), out \(outFeatures))")
        try requireBLASExtents(rows, inFeatures, outFeatures, kernel: name)
        try requireCapacity(input.count, rows * inFeatures, name, "input")
        try requireCapacity(output.count, rows * outFeatures, name, "output")
        if let bias { try requireCapacity(bias.count, outFeatures, name, "bias") }
        if let residual { try requireCapacity(residual.count, rows * outFeatures, name, "residual") }
    }

    /// Residual, bias and activation as passes after an OpenBLAS product.
    private static func finishWithoutKernel(rows: Int, outFeatures: Int, epilogue: KernelEpilogue,
                                            output: UnsafeMutablePointer<Float>, context: KernelContext) {
        if let shortcut = epilogue.residual {
            applyResidual(shortcut, activation: .identity, to: output, count: rows * outFeatures, context: context)
        }
        applyEpilogue(OutputBlock(base: output, rows: rows, columns: outFeatures, rowStride: outFeatures),
                      bias: epilogue.bias, direction: .perColumn, activation: epilogue.activation, context: context)
    }
}
