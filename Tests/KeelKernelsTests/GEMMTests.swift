/// Dense and batched MatMul against ONNX Runtime (Gemm / MatMul) fixtures.
import KeelKernels
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

    func testMatMulRejectsMismatchedInnerExtents() {
        XCTAssertThrowsError(try MatMul.outputShape(a: [2, 3], b: [4, 5]))
        XCTAssertThrowsError(try MatMul.outputShape(a: [2, 2, 3], b: [3, 3, 5]))
    }
}
