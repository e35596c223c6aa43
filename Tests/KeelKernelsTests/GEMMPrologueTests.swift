/// The GEMM's input prologue (`sgemm_prologue`: A(r, p) → max(0, scale[p]·A(r, p) + shift[p]),
/// a BatchNorm and ReLU on a 1×1 convolution's input) at every SIMD level against a double-precision
/// product of the transformed operand: row-major A (the vector pack), a transposed view (the scalar
/// pack), shallow and narrow products (which read A in place without a prologue), depths past one
/// 256-deep pass and not a multiple of the vector, row groups not a multiple of four, with and
/// without the ReLU, and the same values when the rows are split across two calls.
@testable import KeelKernels
import CSIMDKernels
import XCTest

final class GEMMPrologueTests: XCTestCase {
    struct Case { var m, n, k: Int; var relu: Bool }

    let cases = [
        Case(m: 1, n: 1, k: 1, relu: true),
        Case(m: 5, n: 17, k: 3, relu: true),
        Case(m: 13, n: 33, k: 17, relu: false),
        Case(m: 7, n: 128, k: 129, relu: true),
        Case(m: 25, n: 100, k: 300, relu: true),
        Case(m: 49, n: 65, k: 600, relu: false),
    ]

    func testPrologueMatchesTransformedOperandAtEveryLevel() {
        forEachCapabilitySet { level in
            guard let kernel = KernelTable.current.sgemm_prologue else { return }
            for (index, test) in cases.enumerated() {
                let (m, n, k) = (test.m, test.n, test.k)
                let a = seededValues(m * k, seed: UInt64(700 + index))
                let b = seededValues(k * n, seed: UInt64(800 + index))
                // Negative scales and shifts too, so the ReLU has work on both sides of zero.
                let scale = seededValues(k, seed: UInt64(900 + index)).map { $0 * 2 }
                let shift = seededValues(k, seed: UInt64(1000 + index))
                let expected = reference(test, a: a, b: b, scale: scale, shift: shift)
                for transposed in [false, true] {
                    for splitRows in [false, true] {
                        let label = "\(level) \(m)×\(n)×\(k) relu \(test.relu) transposed \(transposed) split \(splitRows)"
                        let c = multiply(kernel, test, a: a, b: b, scale: scale, shift: shift, transposed: transposed,
                                         splitRows: splitRows)
                        for row in 0..<m {
                            for column in 0..<n {
                                let (value, magnitude) = expected[row * n + column]
                                XCTAssertLessThanOrEqual(abs(Double(c[row * n + column]) - value), 1e-6 * magnitude,
                                                         "\(label) at [\(row), \(column)]")
                            }
                        }
                    }
                }
            }
        }
    }

    /// A NaN in A stays NaN through the prologue's ReLU, as through Keel's ReLU node.
    func testNaNPropagatesThroughTheReLU() {
        forEachCapabilitySet { level in
            guard let kernel = KernelTable.current.sgemm_prologue else { return }
            let test = Case(m: 6, n: 40, k: 140, relu: true)
            for transposed in [false, true] {
                var a = seededValues(test.m * test.k, seed: 11)
                a[2 * test.k + 131] = .nan
                let b = [Float](repeating: 1, count: test.k * test.n)
                let ones = [Float](repeating: 1, count: test.k), zeros = [Float](repeating: 0, count: test.k)
                let c = multiply(kernel, test, a: a, b: b, scale: ones, shift: zeros, transposed: transposed,
                                 splitRows: false)
                for row in 0..<test.m {
                    XCTAssertEqual(c[row * test.n].isNaN, row == 2, "\(level) transposed \(transposed) row \(row)")
                }
            }
        }
    }

    func reference(_ test: Case, a: [Float], b: [Float], scale: [Float], shift: [Float]) -> [(Double, Double)] {
        var result: [(Double, Double)] = []
        for row in 0..<test.m {
            for column in 0..<test.n {
                var sum = 0.0, magnitude = 1.0
                for step in 0..<test.k {
                    var value = Double(scale[step]) * Double(a[row * test.k + step]) + Double(shift[step])
                    if test.relu { value = max(value, 0) }
                    let term = value * Double(b[step * test.n + column])
                    sum += term
                    magnitude += abs(term) + abs(Double(shift[step]) * Double(b[step * test.n + column]))
                }
                result.append((sum, magnitude))
            }
        }
        return result
    }

    /// C = prologue(A)·B through the kernel, A row-major (lda = k + 3) or transposed, B row-major;
    /// with `splitRows`, the first and second halves of the rows in two calls.
    func multiply(_ kernel: keel_sgemm_prologue_fn, _ test: Case, a: [Float], b: [Float], scale: [Float],
                  shift: [Float], transposed: Bool, splitRows: Bool) -> [Float] {
        let (m, n, k) = (test.m, test.n, test.k)
        var left: [Float], rowStep: Int, depthStep: Int
        if transposed {
            rowStep = 1
            depthStep = m + 2
            left = [Float](repeating: .nan, count: k * depthStep)
            for row in 0..<m { for step in 0..<k { left[step * depthStep + row] = a[row * k + step] } }
        } else {
            rowStep = k + 3
            depthStep = 1
            left = [Float](repeating: .nan, count: m * rowStep)
            for row in 0..<m { for step in 0..<k { left[row * rowStep + step] = a[row * k + step] } }
        }
        var c = [Float](repeating: .nan, count: m * n)
        left.withUnsafeBufferPointer { left in
            b.withUnsafeBufferPointer { b in
                scale.withUnsafeBufferPointer { scale in
                    shift.withUnsafeBufferPointer { shift in
                        c.withUnsafeMutableBufferPointer { c in
                            var prologue = keel_gemm_prologue(scale: scale.baseAddress, shift: shift.baseAddress,
                                                              relu: test.relu ? 1 : 0)
                            let right = PanelGEMM.rowMajorRight(b.baseAddress, depthStep: n)
                            let middle = splitRows ? m / 2 : 0
                            for rows in [0..<middle, middle..<m] where !rows.isEmpty {
                                let part = keel_gemm_left(base: left.baseAddress! + rows.lowerBound * rowStep,
                                                          row_step: rowStep, depth_step: depthStep, block_rows: 0,
                                                          block_step: 0)
                                kernel(rows.count, n, k, part, right, c.baseAddress! + rows.lowerBound * n, n, nil,
                                       &prologue)
                            }
                        }
                    }
                }
            }
        }
        return c
    }
}
