/// Dense and batched MatMul against ONNX Runtime (Gemm / MatMul) fixtures.
@testable import KeelKernels
import XCTest

final class GEMMTests: XCTestCase {
    func testDenseMatchesONNXRuntime() throws {
        for fixture in Fixtures.cases("dense") {
            guard let x = fixture.input("x") else { return XCTFail("\(fixture.name): no x") }
            let input = try Fixtures.floats(x)
            let kernel = try Fixtures.input(fixture, "kernel")
            let bias = try fixture.input("bias").map { try Fixtures.floats($0) }
            let expected = try Fixtures.expected(fixture)
            let (rows, inFeatures, outFeatures) = (x.shape[0], x.shape[1], expected.shape[1])
            let layout: DenseWeightLayout = fixture.string("weight_layout") == "out_in" ? .outIn : .inOut
            let activation: UnaryOperation
            switch fixture.string("activation") {
            case "relu": activation = .relu
            case "tanh": activation = .tanh
            case "clip": activation = .clip(min: fixture.float("min") ?? 0, max: fixture.float("max") ?? 0)
            default: activation = .identity
            }
            let actual = try withOutput(rows * outFeatures) { output in
                try input.withUnsafeBufferPointer { source in
                    try kernel.withUnsafeBufferPointer { weights in
                        if let bias {
                            try bias.withUnsafeBufferPointer { biasBuffer in
                                try Dense.apply(input: source, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures,
                                                kernel: weights, layout: layout, bias: biasBuffer, activation: activation,
                                                output: output)
                            }
                        } else {
                            try Dense.apply(input: source, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures,
                                            kernel: weights, layout: layout, activation: activation, output: output)
                        }
                    }
                }
            }
            assertClose(actual, expected.values, fixture.name)
        }
    }

    func testMatMulMatchesONNXRuntime() throws {
        for fixture in Fixtures.cases("matmul") {
            guard let aTensor = fixture.input("a"), let bTensor = fixture.input("b") else {
                return XCTFail("\(fixture.name): incomplete case")
            }
            let (a, b) = (try Fixtures.floats(aTensor), try Fixtures.floats(bTensor))
            let expected = try Fixtures.expected(fixture)
            XCTAssertEqual(try MatMul.outputShape(a: aTensor.shape, b: bTensor.shape), expected.shape, fixture.name)
            let actual = try withOutput(expected.values.count) { output in
                try a.withUnsafeBufferPointer { left in
                    try b.withUnsafeBufferPointer { right in
                        try MatMul.apply(a: left, aShape: aTensor.shape, b: right, bShape: bTensor.shape, output: output)
                    }
                }
            }
            assertClose(actual, expected.values, fixture.name)
        }
    }

    /// Batched products with broadcast batch axes (attention's per-head shapes, smaller) at every
    /// SIMD level and thread count, against double-precision sums computed here.
    func testBatchedMatMulMatchesDoublePrecisionAtEveryLevel() throws {
        let cases: [(a: [Int], b: [Int])] = [([2, 3, 17, 40], [3, 40, 33]), ([1, 4, 29, 16], [4, 16, 29]),
                                             ([3, 1, 5, 7], [1, 2, 7, 70]), ([2, 9, 0], [2, 0, 5])]
        try forEachCapabilitySet { level in
            for (index, shapes) in cases.enumerated() {
                let a = seededValues(shapes.a.reduce(1, *), seed: UInt64(300 + index))
                let b = seededValues(shapes.b.reduce(1, *), seed: UInt64(400 + index))
                let outputShape = try MatMul.outputShape(a: shapes.a, b: shapes.b)
                let (m, k, n) = (shapes.a[shapes.a.count - 2], shapes.a[shapes.a.count - 1], shapes.b[shapes.b.count - 1])
                let batch = Array(outputShape.dropLast(2))
                for threads in [1, 2] {
                    let actual = try withOutput(outputShape.reduce(1, *)) { output in
                        try a.withUnsafeBufferPointer { left in
                            try b.withUnsafeBufferPointer { right in
                                try MatMul.apply(a: left, aShape: shapes.a, b: right, bShape: shapes.b, output: output,
                                                 context: KernelContext(threads: threads))
                            }
                        }
                    }
                    // Output matrix i reads the A and B matrices its batch index maps to (1 broadcasts).
                    for matrix in 0..<batch.reduce(1, *) {
                        var (remainder, aIndex, bIndex, aScale, bScale) = (matrix, 0, 0, 1, 1)
                        let aBatch = [Int](repeating: 1, count: batch.count - (shapes.a.count - 2)) + shapes.a.dropLast(2)
                        let bBatch = [Int](repeating: 1, count: batch.count - (shapes.b.count - 2)) + shapes.b.dropLast(2)
                        for axis in stride(from: batch.count - 1, through: 0, by: -1) {
                            let position = remainder % batch[axis]
                            remainder /= batch[axis]
                            aIndex += (aBatch[axis] == 1 ? 0 : position) * aScale
                            bIndex += (bBatch[axis] == 1 ? 0 : position) * bScale
                            aScale *= aBatch[axis]
                            bScale *= bBatch[axis]
                        }
                        for row in 0..<m {
                            for column in 0..<n {
                                var exact = 0.0
                                for step in 0..<k {
                                    exact += Double(a[aIndex * m * k + row * k + step]) * Double(b[bIndex * k * n + step * n + column])
                                }
                                let got = Double(actual[matrix * m * n + row * n + column])
                                XCTAssertEqual(got, exact, accuracy: 1e-5 * Double(k) + 1e-6,
                                               "\(level) \(shapes) threads \(threads) matrix \(matrix) [\(row), \(column)]")
                            }
                        }
                    }
                }
            }
        }
    }

    func testMatMulRejectsMismatchedInnerExtents() {
        XCTAssertThrowsError(try MatMul.outputShape(a: [2, 3], b: [4, 5]))
        XCTAssertThrowsError(try MatMul.outputShape(a: [2, 2, 3], b: [3, 3, 5]))
    }
}
