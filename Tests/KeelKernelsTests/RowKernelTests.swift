/// Softmax and layer normalisation along rows (CSIMDKernels/row_kernels.h), at every SIMD level
/// this CPU has and the portable path, against references computed here in double precision:
/// row lengths around the 8- and 16-lane vectors and their masked tails, ViT's 197-token rows.
@testable import KeelKernels
import Foundation
import XCTest

final class RowKernelTests: XCTestCase {
    let lengths = [1, 7, 8, 9, 15, 16, 17, 33, 197, 768]

    func testSoftmaxMatchesDoublePrecision() throws {
        try forEachCapabilitySet { level in
            for (index, length) in lengths.enumerated() {
                let rows = 3
                let input = seededValues(rows * length, seed: UInt64(10 + index)).map { $0 * 20 }
                for threads in [1, 2] {
                    let actual = try withOutput(input.count) { output in
                        try input.withUnsafeBufferPointer { source in
                            try Softmax.apply(input: source, output: output, outer: rows, axis: length, inner: 1,
                                              context: KernelContext(threads: threads))
                        }
                    }
                    for row in 0..<rows {
                        let values = input[row * length..<(row + 1) * length].map(Double.init)
                        let largest = values.max() ?? 0
                        let total = values.reduce(0) { $0 + exp($1 - largest) }
                        for column in 0..<length {
                            let expected = exp(values[column] - largest) / total
                            let got = Double(actual[row * length + column])
                            // x − max rounds to fp32 before the exponential: up to 40·2⁻²⁴ relative here.
                            XCTAssertLessThanOrEqual(abs(got - expected), 4e-6 * expected + 1e-37,
                                                     "\(level) length \(length) threads \(threads) [\(row), \(column)]")
                        }
                    }
                }
            }
        }
    }

    /// A row with a NaN or +∞, or of −∞ only, is NaN throughout (e^(x − max) is NaN for some x);
    /// the other rows are untouched by it. In place.
    func testSoftmaxRowsWithNonFiniteValues() throws {
        try forEachCapabilitySet { level in
            var values: [Float] = [1, .nan, 2, 3, .infinity, 0, -.infinity, -.infinity, -.infinity, 0, 0, 0]
            try values.withUnsafeMutableBufferPointer { buffer in
                try Softmax.apply(input: UnsafeBufferPointer(buffer), output: buffer, outer: 4, axis: 3, inner: 1)
            }
            XCTAssertTrue(values[0..<9].allSatisfy(\.isNaN), "\(level): \(values)")
            assertClose(Array(values[9...]), [1 / 3, 1 / 3, 1 / 3], "\(level) finite row", tolerance: 1e-7)
            // A NaN in the second of the two vectors each loop step takes (8 and 16 lanes alike).
            var long = [Float](repeating: 0, count: 40)
            long[25] = .nan
            try long.withUnsafeMutableBufferPointer { buffer in
                try Softmax.apply(input: UnsafeBufferPointer(buffer), output: buffer, outer: 1, axis: 40, inner: 1)
            }
            XCTAssertTrue(long.allSatisfy(\.isNaN), "\(level): \(long)")
        }
    }

    /// Masked scores (Swin adds −100) give exact zeros, not subnormals: e^(x − max) below e^−80 is
    /// flushed (an absolute error under 2e-35), and the rest still match double precision.
    func testSoftmaxFlushesMaskedScoresToZero() throws {
        try forEachCapabilitySet { level in
            for length in [3, 17, 49] {
                var input = seededValues(2 * length, seed: UInt64(length))
                for index in input.indices where index % 3 == 1 { input[index] -= 100 }
                let actual = try withOutput(input.count) { output in
                    try input.withUnsafeBufferPointer { source in
                        try Softmax.apply(input: source, output: output, outer: 2, axis: length, inner: 1)
                    }
                }
                for row in 0..<2 {
                    let values = input[row * length..<(row + 1) * length].map(Double.init)
                    let largest = values.max() ?? 0
                    let total = values.reduce(0) { $0 + exp($1 - largest) }
                    for column in 0..<length {
                        let got = actual[row * length + column]
                        let exact = exp(values[column] - largest) / total
                        if values[column] - largest < -80 {
                            XCTAssertEqual(got, 0, "\(level) length \(length) [\(row), \(column)]")
                        } else {
                            XCTAssertLessThanOrEqual(abs(Double(got) - exact), 4e-6 * exact,
                                                     "\(level) length \(length) [\(row), \(column)]")
                        }
                        XCTAssertFalse(got.isSubnormal, "\(level) length \(length) [\(row), \(column)]: \(got)")
                    }
                }
            }
        }
    }

    /// The scaled transpose attention copies Kᵀ with: every row count around the vector widths, a
    /// row stride wider than the rows.
    func testScaledTransposeMatchesAPlainCopy() throws {
        try forEachCapabilitySet { level in
            guard let transpose = KernelTable.current.scaled_transpose else {
                print("[\(level)]: no scaled transpose body at this level; attention copies Kᵀ in Swift there (AttentionTests)")
                return
            }
            for (rows, columns) in [(1, 1), (7, 3), (16, 32), (17, 5), (49, 32)] {
                let stride = columns + 3
                let input = seededValues(rows * stride, seed: UInt64(rows * 100 + columns))
                var output = [Float](repeating: .nan, count: rows * columns)
                input.withUnsafeBufferPointer { source in
                    output.withUnsafeMutableBufferPointer { target in
                        if let from = source.baseAddress, let to = target.baseAddress {
                            transpose(rows, columns, from, stride, 0.5, to)
                        }
                    }
                }
                let expected = (0..<columns).flatMap { column in (0..<rows).map { 0.5 * input[$0 * stride + column] } }
                XCTAssertEqual(output, expected, "\(level) \(rows)×\(columns)")
            }
        }
    }

    func testLayerNormMatchesDoublePrecision() throws {
        try forEachCapabilitySet { level in
            for (index, length) in lengths.enumerated() {
                let rows = 5
                let input = seededValues(rows * length, seed: UInt64(30 + index)).map { $0 * 4 + 3 }
                let gamma = seededValues(length, seed: UInt64(50 + index))
                let beta = seededValues(length, seed: UInt64(70 + index))
                var means = [Float](repeating: .nan, count: rows)
                var deviations = [Float](repeating: .nan, count: rows)
                for withBeta in [true, false] {
                    var actual = input
                    try actual.withUnsafeMutableBufferPointer { buffer in
                        try gamma.withUnsafeBufferPointer { g in
                            try beta.withUnsafeBufferPointer { b in
                                try means.withUnsafeMutableBufferPointer { m in
                                    try deviations.withUnsafeMutableBufferPointer { d in
                                        try LayerNorm.apply(input: UnsafeBufferPointer(buffer), output: buffer, rows: rows,
                                                            normSize: length, gamma: g, beta: withBeta ? b : nil,
                                                            epsilon: 1e-5, mean: m, inverseDeviation: d,
                                                            context: KernelContext(threads: 2))
                                    }
                                }
                            }
                        }
                    }
                    for row in 0..<rows {
                        let values = input[row * length..<(row + 1) * length].map(Double.init)
                        let mean = values.reduce(0, +) / Double(length)
                        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(length)
                        let inverse = 1 / (variance + 1e-5).squareRoot()
                        XCTAssertEqual(Double(means[row]), mean, accuracy: 1e-5 * abs(mean), "\(level) mean")
                        XCTAssertEqual(Double(deviations[row]), inverse, accuracy: 1e-5 * inverse, "\(level) deviation")
                        for column in 0..<length {
                            let shift = withBeta ? Double(beta[column]) : 0
                            let expected = (values[column] - mean) * inverse * Double(gamma[column]) + shift
                            XCTAssertEqual(Double(actual[row * length + column]), expected, accuracy: 2e-5,
                                           "\(level) length \(length) beta \(withBeta) [\(row), \(column)]")
                        }
                    }
                }
            }
        }
    }
}
