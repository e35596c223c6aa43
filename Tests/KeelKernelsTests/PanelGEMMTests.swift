/// Keel's GEMM (`PanelGEMM.multiply`) at every SIMD level against a double-precision product with
/// the epilogue applied here: every form of the left operand (row-major, rows 4 KB apart that are
/// packed, a transposed view, block-packed, depths in segments) and of the right (row-major, panels interleaved and split into 16-column halves), on sizes around the register block (12 rows
/// on AVX-512, 6 on AVX2), the 32-column panel, the narrow products that read A in place, the
/// 256-deep pass and the four-group chunks, packed row groups whose height is not a multiple of
/// four and whose depth is not a multiple of the vector, more than one 32-panel column block, all
/// three at once (every next panel the streaming group prefetches), k = 0, one and two threads.
@testable import KeelKernels
import CSIMDKernels
import Foundation
import XCTest

final class PanelGEMMTests: XCTestCase {
    enum LeftForm: CaseIterable { case rowMajor, transposed, blockPacked, segmented }
    enum RightForm: CaseIterable { case rowMajor, panels, splitPanels }

    struct Case {
        var m, n, k: Int
        var activation: UnaryOperation
        var biasPerRow: Bool
        var residual: Bool
        /// The row-major left operand's row stride, when not k + 3.
        var rowStride: Int? = nil
    }

    let cases = [
        Case(m: 1, n: 1, k: 1, activation: .identity, biasPerRow: false, residual: false),
        Case(m: 1, n: 33, k: 300, activation: .relu, biasPerRow: false, residual: true),
        Case(m: 5, n: 17, k: 3, activation: .clip(min: 0, max: 6), biasPerRow: true, residual: false),
        Case(m: 13, n: 64, k: 129, activation: .identity, biasPerRow: false, residual: true),
        Case(m: 25, n: 100, k: 257, activation: .relu, biasPerRow: true, residual: true),
        Case(m: 61, n: 65, k: 600, activation: .clip(min: 0, max: 6), biasPerRow: false, residual: false),
        Case(m: 30, n: 40, k: 0, activation: .relu, biasPerRow: false, residual: true),
        // Past one column block of B (32 panels): the second block's rows of C and epilogue.
        Case(m: 14, n: 1057, k: 131, activation: .relu, biasPerRow: false, residual: true),
        // Two chunks of row groups, two column blocks and two depth passes: the deep streaming
        // group fetches the next panel from each of the places the loop goes next.
        Case(m: 53, n: 1057, k: 300, activation: .relu, biasPerRow: false, residual: true),
        // Wide enough (n ≥ 8·m) for two threads to split columns, with a bias per row.
        Case(m: 16, n: 300, k: 70, activation: .relu, biasPerRow: true, residual: true),
        // B small enough for L1 (5 panels × depth 20): row group by row group across the panels,
        // three chunks, a ragged last panel; and a bias per row on one panel.
        Case(m: 103, n: 150, k: 20, activation: .relu, biasPerRow: false, residual: true),
        Case(m: 50, n: 20, k: 7, activation: .clip(min: 0, max: 6), biasPerRow: true, residual: false),
        // GELU, applied to two rows' registers at a time: odd row counts (the last row alone), a
        // ragged half-panel, one and two depth passes.
        Case(m: 5, n: 21, k: 3, activation: .gelu, biasPerRow: false, residual: true),
        Case(m: 13, n: 40, k: 300, activation: .gelu, biasPerRow: true, residual: true),
        // Columns that fill only a block's first vector (16 on AVX-512, a half's 8 on AVX2), alone
        // and as the last panel after whole ones, over one and two depth passes.
        Case(m: 29, n: 16, k: 32, activation: .clip(min: 0, max: 6), biasPerRow: false, residual: true),
        Case(m: 27, n: 48, k: 270, activation: .identity, biasPerRow: true, residual: false),
        Case(m: 7, n: 24, k: 40, activation: .gelu, biasPerRow: false, residual: true),
        // A last vector of at most 8 columns, which AVX-512 multiplies on its low half: after a
        // whole 16 (24 of a panel's 32) and alone (a last panel of 8), over two depth passes.
        Case(m: 26, n: 56, k: 300, activation: .relu, biasPerRow: false, residual: true),
        Case(m: 19, n: 40, k: 290, activation: .clip(min: 0, max: 6), biasPerRow: true, residual: true),
        // Row-major rows a multiple of 4 KB apart, which the kernel packs rather than read in place
        // (they would alias in L1): four depth passes, the last one short, and a ragged row group.
        Case(m: 25, n: 40, k: 1000, activation: .relu, biasPerRow: false, residual: true, rowStride: 1024),
        Case(m: 14, n: 70, k: 300, activation: .clip(min: 0, max: 6), biasPerRow: true, residual: false,
             rowStride: 2048),
    ]

    func testEveryOperandFormMatchesDoublePrecisionAtEveryLevel() {
        forEachCapabilitySet { level in
            for (index, test) in cases.enumerated() {
                let (m, n, k) = (test.m, test.n, test.k)
                let a = seededValues(m * k, seed: UInt64(300 + index))
                let b = seededValues(k * n, seed: UInt64(400 + index))
                let bias = seededValues(test.biasPerRow ? m : n, seed: UInt64(500 + index))
                let ldc = n + 2
                let residual = seededValues(m * ldc, seed: UInt64(600 + index))
                let expected = reference(test, a: a, b: b, bias: bias, residual: residual, ldc: ldc)
                for leftForm in LeftForm.allCases {
                    for rightForm in RightForm.allCases {
                        for threads in [1, 2] {
                            let label = "\(level) \(m)×\(n)×\(k) \(leftForm) \(rightForm) threads \(threads)"
                            guard let c = multiply(test, a: a, b: b, bias: bias, residual: residual, ldc: ldc,
                                                   leftForm: leftForm, rightForm: rightForm, threads: threads)
                            else {
                                XCTAssertFalse(PanelGEMM.isPresent, "\(label): the kernel refused a product")
                                continue
                            }
                            for row in 0..<m {
                                for column in 0..<n {
                                    let (value, magnitude) = expected[row * n + column]
                                    XCTAssertLessThanOrEqual(abs(Double(c[row * ldc + column]) - value),
                                                             1e-6 * magnitude + 1e-30, "\(label) at [\(row), \(column)]")
                                }
                                XCTAssertTrue(c[row * ldc + n].isNaN, "\(label) wrote past row \(row)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// The product and epilogue in double precision, with the sum of magnitudes that bounds the
    /// rounding error.
    func reference(_ test: Case, a: [Float], b: [Float], bias: [Float], residual: [Float], ldc: Int) -> [(Double, Double)] {
        var result: [(Double, Double)] = []
        for row in 0..<test.m {
            for column in 0..<test.n {
                var sum = 0.0, magnitude = 0.0
                for step in 0..<test.k {
                    let term = Double(a[row * test.k + step]) * Double(b[step * test.n + column])
                    sum += term
                    magnitude += abs(term)
                }
                sum += Double(bias[test.biasPerRow ? row : column])
                if test.residual { sum += Double(residual[row * ldc + column]) }
                switch test.activation {
                case .relu: sum = max(sum, 0)
                case let .clip(lower, upper): sum = min(max(sum, Double(lower)), Double(upper))
                case .gelu:
                    // x·Φ(x) from erfc (exact where Φ is tiny); its slope is at most 1.13, and the
                    // kernel's GELU is within 1e-6·|GELU| + 2e-7·|x|: twice the bound covers both.
                    sum = 0.5 * sum * erfc(-sum / 2.0.squareRoot())
                    magnitude = 2 * magnitude + abs(sum)
                default: break
                }
                result.append((sum, magnitude + 1))
            }
        }
        return result
    }

    /// C through `PanelGEMM.multiply` with the operands laid out as asked; nil when no kernel ran.
    func multiply(_ test: Case, a: [Float], b: [Float], bias: [Float], residual: [Float], ldc: Int,
                  leftForm: LeftForm, rightForm: RightForm, threads: Int) -> [Float]? {
        let (m, n, k) = (test.m, test.n, test.k)
        let blockRows = max(1, Int(KernelTable.current.sgemm_rows))
        let panel = PanelGEMM.panel
        var left: [Float], leftSteps: (row: Int, depth: Int, blockRows: Int, blockStep: Int)
        var segment = (depth: 0, step: 0)
        switch leftForm {
        case .rowMajor:
            let lda = test.rowStride ?? k + 3
            left = [Float](repeating: .nan, count: m * lda + 1)
            for row in 0..<m { for step in 0..<k { left[row * lda + step] = a[row * k + step] } }
            leftSteps = (lda, 1, 0, 0)
        case .transposed:
            let stride = m + 2
            left = [Float](repeating: .nan, count: max(k, 1) * stride)
            for row in 0..<m { for step in 0..<k { left[step * stride + row] = a[row * k + step] } }
            leftSteps = (1, stride, 0, 0)
        case .blockPacked:
            let blocks = (m + blockRows - 1) / blockRows
            left = [Float](repeating: 0, count: blocks * max(k, 1) * blockRows)
            for row in 0..<m {
                for step in 0..<k {
                    left[(row / blockRows) * k * blockRows + step * blockRows + row % blockRows] = a[row * k + step]
                }
            }
            leftSteps = (1, blockRows, blockRows, k * blockRows)
        case .segmented:
            // Segments of 100 depths (passes split inside the 256-deep pass and at the segments'
            // ends; 7 when shallower), each its own [m][depth + 1] block with a gap after it.
            let depth = k > 200 ? 100 : 7
            segment = (depth, m * (depth + 1) + 3)
            let segments = (k + depth - 1) / depth
            left = [Float](repeating: .nan, count: max(segments, 1) * segment.step)
            for row in 0..<m {
                for step in 0..<k {
                    left[(step / depth) * segment.step + row * (depth + 1) + step % depth] = a[row * k + step]
                }
            }
            leftSteps = (depth + 1, 1, 0, 0)
        }
        var right: [Float], rightSteps: (depth: Int, panel: Int, padded: Int32, half: Int)
        switch rightForm {
        case .rowMajor:
            let ldb = n + 1
            right = [Float](repeating: .nan, count: max(k, 1) * ldb)
            for step in 0..<k { for column in 0..<n { right[step * ldb + column] = b[step * n + column] } }
            rightSteps = (ldb, panel, 0, 16)
        case .panels:
            let panels = (n + panel - 1) / panel
            right = [Float](repeating: 0, count: panels * max(k, 1) * panel)
            for step in 0..<k {
                for column in 0..<n {
                    right[(column / panel) * k * panel + step * panel + column % panel] = b[step * n + column]
                }
            }
            rightSteps = (panel, k * panel, 1, 16)
        case .splitPanels:
            let panels = (n + panel - 1) / panel
            right = [Float](repeating: 0, count: panels * max(k, 1) * panel)
            for step in 0..<k {
                for column in 0..<n {
                    let lane = column % panel
                    right[(column / panel) * k * panel + (lane / 16) * k * 16 + step * 16 + lane % 16] = b[step * n + column]
                }
            }
            rightSteps = (16, k * panel, 1, k * 16)
        }
        var c = [Float](repeating: .nan, count: m * ldc)
        let ran = left.withUnsafeBufferPointer { left in
            right.withUnsafeBufferPointer { right in
                bias.withUnsafeBufferPointer { bias in
                    residual.withUnsafeBufferPointer { residual in
                        c.withUnsafeMutableBufferPointer { c in
                            PanelGEMM.multiply(
                                m: m, n: n, k: k,
                                left: keel_gemm_left(base: left.baseAddress, row_step: leftSteps.row,
                                                     depth_step: leftSteps.depth, block_rows: leftSteps.blockRows,
                                                     block_step: leftSteps.blockStep, segment_depth: segment.depth,
                                                     segment_step: segment.step),
                                right: keel_gemm_right(base: right.baseAddress, depth_step: rightSteps.depth,
                                                       panel_step: rightSteps.panel, padded: rightSteps.padded,
                                                       half_step: rightSteps.half),
                                c: c.baseAddress!, ldc: ldc,
                                epilogue: KernelEpilogue(bias: bias.baseAddress,
                                                         residual: test.residual ? residual.baseAddress : nil,
                                                         activation: test.activation),
                                biasPerRow: test.biasPerRow, residualStride: ldc, context: KernelContext(threads: threads))
                        }
                    }
                }
            }
        }
        return ran ? c : nil
    }
}
