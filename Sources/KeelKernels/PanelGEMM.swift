/// Keel's own GEMM (CSIMDKernels/panel_gemm.h) over Keel's threads, with the epilogue fused:
/// the convolutions' products, whose filter operand is read in place (no per-call repacking as
/// with OpenBLAS). Work is split across threads by rows, or by columns when the right-hand matrix
/// is much larger than the left (each thread then streams half of a large filter), in shares
/// sized by each thread's recent speed.
import CSIMDKernels

public enum PanelGEMM {
    static let panel = Int(KEEL_PANEL_COLUMNS)
    /// Columns in each half of a panel (keel_gemm_right's half_step).
    static let half = panel / 2

    /// A row-major matrix whose rows are `depthStep` floats apart, as the right operand.
    static func rowMajorRight(_ base: UnsafePointer<Float>?, depthStep: Int) -> keel_gemm_right {
        keel_gemm_right(base: base, depth_step: depthStep, panel_step: panel, padded: 0, half_step: half)
    }

    /// C = epilogue(A·B). Returns false, having written nothing, when the kernel table has no
    /// GEMM body for this CPU.
    static func multiply(m: Int, n: Int, k: Int, left: keel_gemm_left, right: keel_gemm_right,
                         c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: KernelEpilogue, biasPerRow: Bool,
                         residualStride: Int, context: KernelContext, prologue: keel_gemm_prologue? = nil) -> Bool {
        guard let plain = KernelTable.current.sgemm else { return false }
        let withPrologue = KernelTable.current.sgemm_prologue
        guard prologue == nil || withPrologue != nil else { return false }
        let kernel = { (m: Int, n: Int, k: Int, left: keel_gemm_left, right: keel_gemm_right, c: UnsafeMutablePointer<Float>,
                        ldc: Int, epilogue: UnsafePointer<keel_epilogue>) in
            guard var transform = prologue, let withPrologue else { return plain(m, n, k, left, right, c, ldc, epilogue) }
            withPrologue(m, n, k, left, right, c, ldc, epilogue, &transform)
        }
        guard m > 0, n > 0 else { return true }
        let base = epilogue.description(biasPerRow: biasPerRow, residualStride: residualStride)
        let panels = (n + panel - 1) / panel
        let work = Double(m) * Double(n) * Double(max(k, 1))
        let threads = work < minimumParallelWork ? 1 : context.threads
        let splitColumns = Double(n) >= columnSplitRatio * Double(m) ? panels >= 2 : m < 16
        if threads <= 1 || (splitColumns && panels < 2) || (!splitColumns && m < 2) {
            var description = base
            kernel(m, n, k, left, right, c, ldc, &description)
        } else if splitColumns {
            context.forEachStolenPiece(panels, minimumPiece: 1) { range, _ in
                let first = range.lowerBound * panel, width = min(n, range.upperBound * panel) - first
                var description = base
                if !biasPerRow { description.bias = base.bias.map { $0 + first } }
                description.residual = base.residual.map { $0 + first }
                var part = right
                part.base = right.base + range.lowerBound * right.panel_step
                kernel(m, width, k, left, part, c + first, ldc, &description)
            }
        } else {
            // Rows split at whole blocks of a block-packed left operand.
            let unit = max(1, left.block_rows)
            context.forEachStolenPiece((m + unit - 1) / unit, minimumPiece: max(1, 8 / unit)) { range, _ in
                let first = range.lowerBound * unit, rows = min(m, range.upperBound * unit) - first
                var description = base
                if biasPerRow { description.bias = base.bias.map { $0 + first } }
                description.residual = base.residual.map { $0 + first * residualStride }
                var part = left
                part.base = left.block_rows > 0 ? left.base + range.lowerBound * left.block_step
                                                : left.base + first * left.row_step
                kernel(rows, n, k, part, right, c + first * ldc, ldc, &description)
            }
        }
        let remaining = epilogue.remainingActivation
        if remaining != .identity {
            applyEpilogue(OutputBlock(base: c, rows: m, columns: n, rowStride: ldc), bias: nil, direction: .perColumn,
                          activation: remaining, context: context)
        }
        return true
    }

    /// C = A·B through OpenBLAS, for CPUs without a GEMM body: one call per block of a
    /// block-packed left operand and per panel of a panel-packed right one. A is row-major
    /// (depth_step 1) or read transposed (row_step 1); the epilogue is the caller's.
    static func multiplyWithBLAS(m: Int, n: Int, k: Int, left: keel_gemm_left, right: keel_gemm_right,
                                 c: UnsafeMutablePointer<Float>, ldc: Int, context: KernelContext) {
        guard m > 0, n > 0, let leftBase = left.base, let rightBase = right.base else { return }
        let blockRows = left.block_rows > 0 ? left.block_rows : m
        let rowMajorRight = right.panel_step == panel && right.padded == 0
        // Split panels are multiplied a half at a time.
        let splitHalves = right.half_step != 0 && right.half_step != half
        let stripColumns = rowMajorRight ? n : splitHalves ? half : panel
        let transposeA = left.depth_step != 1
        for (index, firstRow) in stride(from: 0, to: m, by: blockRows).enumerated() {
            let a = left.block_rows > 0 ? leftBase + index * left.block_step : leftBase
            for (strip, firstColumn) in stride(from: 0, to: n, by: stripColumns).enumerated() {
                let b = splitHalves ? rightBase + (strip / 2) * right.panel_step + (strip % 2) * right.half_step
                                    : rightBase + strip * right.panel_step
                sgemm(transposeA: transposeA, transposeB: false, m: min(blockRows, m - firstRow),
                      n: min(stripColumns, n - firstColumn), k: k, a: a,
                      lda: transposeA ? left.depth_step : left.row_step, b: b,
                      ldb: right.depth_step, c: c + firstRow * ldc + firstColumn, ldc: ldc, context: context)
            }
        }
    }

    /// Whether the kernel table has a GEMM body for this CPU (else OpenBLAS multiplies).
    public static var isPresent: Bool { KernelTable.current.sgemm != nil }

    /// Whether the GEMM can apply a BatchNorm (and ReLU) to its left operand as it packs it.
    public static var hasPrologue: Bool { KernelTable.current.sgemm_prologue != nil }

    /// How many times wider than tall a product must be before its columns, not its rows, are split
    /// across threads. A column split makes every thread pack all of A and leaves the next layer's
    /// rows in the other core's cache; a row split makes every thread stream all of B. Splitting
    /// columns whenever n > m cost Xception's 361×728×728 pointwise layers 6–18% and MobileNetV2
    /// 9–29% at batch 1 (2 threads, interleaved minima); columns still win on 49×512×2048 and
    /// ViT's 197×768×2304 (tools/gemm_bench, GEMM_BENCH_SPLIT=1).
    static let columnSplitRatio: Double = 8

    /// Multiply-adds below which a product stays on one thread.
    static let minimumParallelWork: Double = 262_144
}

extension keel_gemm_left {
    /// A left operand without depth segments.
    init(base: UnsafePointer<Float>?, row_step: Int, depth_step: Int, block_rows: Int, block_step: Int) {
        self.init(base: base, row_step: row_step, depth_step: depth_step, block_rows: block_rows, block_step: block_step,
                  segment_depth: 0, segment_step: 0)
    }
}
