/// Keel's own GEMM (CSIMDKernels/panel_gemm.h) over Keel's threads, with the epilogue fused:
/// the convolutions' products, whose filter operand is read in place (no per-call repacking as
/// with OpenBLAS). Work is split across threads by whichever operand is larger: columns when the
/// right-hand matrix is (each thread streams half of a large filter), rows otherwise.
import CSIMDKernels

public enum PanelGEMM {
    static let panel = Int(KEEL_PANEL_COLUMNS)

    /// C = epilogue(A·B). Returns false, having written nothing, when the kernel table has no
    /// GEMM body for this CPU.
    static func multiply(m: Int, n: Int, k: Int, left: keel_gemm_left, right: keel_gemm_right,
                         c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: KernelEpilogue, biasPerRow: Bool,
                         residualStride: Int, context: KernelContext) -> Bool {
        guard let kernel = KernelTable.current.sgemm else { return false }
        guard m > 0, n > 0 else { return true }
        let base = epilogue.description(biasPerRow: biasPerRow, residualStride: residualStride)
        let panels = (n + panel - 1) / panel
        let work = Double(m) * Double(n) * Double(max(k, 1))
        let threads = work < minimumParallelWork ? 1 : context.threads
        let splitColumns = Double(k) * Double(n) > Double(m) * Double(k) ? panels >= 2 : m < 16
        if threads <= 1 || (splitColumns && panels < 2) || (!splitColumns && m < 2) {
            var description = base
            kernel(m, n, k, left, right, c, ldc, &description)
        } else if splitColumns {
            context.forEachChunk(panels, minimumChunk: 1) { range in
                let first = range.lowerBound * panel, width = min(n, range.upperBound * panel) - first
                var description = base
                if !biasPerRow { description.bias = base.bias.map { $0 + first } }
                description.residual = base.residual.map { $0 + first }
                var part = right
                part.base = right.base + range.lowerBound * right.panel_step
                kernel(m, width, k, left, part, c + first, ldc, &description)
            }
        } else {
            context.forEachChunk(m, minimumChunk: 8) { range in
                let first = range.lowerBound
                var description = base
                if biasPerRow { description.bias = base.bias.map { $0 + first } }
                description.residual = base.residual.map { $0 + first * residualStride }
                var part = left
                part.base = left.base + first * left.row_step
                kernel(range.count, n, k, part, right, c + first * ldc, ldc, &description)
            }
        }
        let remaining = epilogue.remainingActivation
        if remaining != .identity {
            applyEpilogue(OutputBlock(base: c, rows: m, columns: n, rowStride: ldc), bias: nil, direction: .perColumn,
                          activation: remaining, context: context)
        }
        return true
    }

    /// Whether the kernel table has a GEMM body for this CPU (else OpenBLAS multiplies).
    public static var isPresent: Bool { KernelTable.current.sgemm != nil }

    /// Multiply-adds below which a product stays on one thread.
    static let minimumParallelWork: Double = 262_144
}
