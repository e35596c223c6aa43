@testable import KeelKernels
import XCTest

/// `sgemm` split over Keel's threads (by columns, or by rows when there are few columns) against
/// a double-precision product, for every transpose combination and a non-zero beta.
final class SplitGEMMTests: XCTestCase {
    func testSplitProductsMatchDoublePrecision() {
        let shapes: [(m: Int, n: Int, k: Int)] = [(70, 300, 40), (300, 20, 64), (1, 4096, 96), (3, 17, 5)]
        for shape in shapes {
            for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
                let lda = (transposeA ? shape.m : shape.k) + 1
                let ldb = (transposeB ? shape.k : shape.n) + 2
                let ldc = shape.n + 3
                let a = seededValues((transposeA ? shape.k : shape.m) * lda, seed: 7)
                let b = seededValues((transposeB ? shape.n : shape.k) * ldb, seed: 8)
                let start = seededValues(shape.m * ldc, seed: 9)
                for threads in [1, 2, 3] {
                    var c = start
                    a.withUnsafeBufferPointer { a in
                        b.withUnsafeBufferPointer { b in
                            c.withUnsafeMutableBufferPointer { c in
                                sgemm(transposeA: transposeA, transposeB: transposeB, m: shape.m, n: shape.n, k: shape.k,
                                      a: a.baseAddress!, lda: lda, b: b.baseAddress!, ldb: ldb, c: c.baseAddress!,
                                      ldc: ldc, beta: 0.5, context: KernelContext(threads: threads))
                            }
                        }
                    }
                    for row in 0..<shape.m {
                        for column in 0..<shape.n {
                            var exact = 0.5 * Double(start[row * ldc + column])
                            var magnitude = abs(exact)
                            for step in 0..<shape.k {
                                let left = Double(transposeA ? a[step * lda + row] : a[row * lda + step])
                                let right = Double(transposeB ? b[column * ldb + step] : b[step * ldb + column])
                                exact += left * right
                                magnitude += abs(left * right)
                            }
                            XCTAssertLessThanOrEqual(abs(Double(c[row * ldc + column]) - exact), 1e-6 * magnitude + 1e-30,
                                                     "\(shape) transposes \(transposeA) \(transposeB) threads \(threads)")
                        }
                        XCTAssertEqual(c[row * ldc + shape.n], start[row * ldc + shape.n], "wrote past row \(row)")
                    }
                }
            }
        }
    }
}
