/// The Winograd GEMM over panel-packed B (interleaved and split panels), at every SIMD level,
/// against a double-precision product computed here: row counts around the 6- and 8-row groups, widths around the 32-column panel,
/// depths on both sides of the in-place/packed switch (128) and of a 512-deep pass.
@testable import KeelKernels
import XCTest

final class PanelPackedGEMMTests: XCTestCase {
    func pack(_ b: [Float], layout: PanelLayout, columns: Int) -> [Float] {
        let width = WinogradWeights.panelColumns
        let panels = (columns + width - 1) / width
        var packed = [Float](repeating: 0, count: panels * width * layout.depth)
        for row in 0..<layout.depth {
            for column in 0..<columns { packed[layout.offset(depth: row, column: column)] = b[row * columns + column] }
        }
        return packed
    }

    func testProductsMatchDoublePrecisionAtEveryLevel() {
        let shapes: [(m: Int, n: Int, k: Int)] = [
            (1, 1, 1), (3, 5, 7), (6, 16, 9), (7, 31, 64), (8, 32, 128), (9, 33, 129), (13, 70, 100),
            (16, 64, 513), (17, 40, 600), (49, 96, 1030),
        ]
        forEachCapabilitySet { level in
            for (index, shape) in shapes.enumerated() {
                let lda = shape.k + 3
                let a = seededValues(shape.m * lda, seed: UInt64(100 + index))
                let b = seededValues(shape.k * shape.n, seed: UInt64(200 + index))
                for split in [false, true] {
                    let layout = PanelLayout(depth: shape.k, splitHalves: split)
                    let panels = pack(b, layout: layout, columns: shape.n)
                    let ldc = shape.n + 2
                    var c = [Float](repeating: .nan, count: shape.m * ldc)
                    a.withUnsafeBufferPointer { a in
                        panels.withUnsafeBufferPointer { panels in
                            c.withUnsafeMutableBufferPointer { c in
                                panelPackedSGEMM(m: shape.m, n: shape.n, k: shape.k, a: a.baseAddress!, lda: lda,
                                                 b: layout.right(panels.baseAddress!), c: c.baseAddress!, ldc: ldc)
                            }
                        }
                    }
                    for row in 0..<shape.m {
                        for column in 0..<shape.n {
                            var exact = 0.0
                            var magnitude = 0.0
                            for step in 0..<shape.k {
                                let term = Double(a[row * lda + step]) * Double(b[step * shape.n + column])
                                exact += term
                                magnitude += abs(term)
                            }
                            let error = abs(Double(c[row * ldc + column]) - exact)
                            XCTAssertLessThanOrEqual(error, 1e-6 * magnitude + 1e-30,
                                                     "\(level) shape \(shape) split \(split) at [\(row), \(column)]")
                        }
                        // Padding between rows of C stays untouched.
                        XCTAssertTrue(c[row * ldc + shape.n].isNaN, "\(level) shape \(shape) wrote past row \(row)")
                    }
                }
            }
        }
    }
}
