import KeelIR
import XCTest
@testable import KeelRuntime

final class WeightInitializerTests: XCTestCase {
    func testGlorotUniformBoundsAndDeterminism() throws {
        // Keras: limit = sqrt(6 / (fan_in + fan_out)); a 3x3x64x128 kernel has fans 576 and 1152.
        let kernel = Constant(name: "block2_conv1/kernel", type: TensorType(.float32, [3, 3, 64, 128]),
                              role: .kernel, trainable: true)
        let values = try XCTUnwrap(WeightInitializer.initialize(kernel, seed: 1)).floats()
        let limit = Float((6.0 / (576.0 + 1152.0)).squareRoot())
        XCTAssertEqual(values.count, 73_728)
        XCTAssertLessThanOrEqual(values.map(abs).max() ?? 0, limit)
        XCTAssertGreaterThan(values.map(abs).max() ?? 0, limit * 0.99)
        // Uniform on [-l, l] has variance l²/3.
        let variance = values.reduce(0) { $0 + $1 * $1 } / Float(values.count)
        XCTAssertEqual(variance, limit * limit / 3, accuracy: limit * limit * 0.02)
        XCTAssertEqual(try XCTUnwrap(WeightInitializer.initialize(kernel, seed: 1)).floats(), values)
        XCTAssertNotEqual(try XCTUnwrap(WeightInitializer.initialize(kernel, seed: 2)).floats(), values)
    }

    func testBatchNormStatisticsAndBias() throws {
        func values(_ role: ParameterRole) throws -> [Float] {
            let constant = Constant(name: "bn/\(role)", type: TensorType(.float32, [3]), role: role, trainable: false)
            return try XCTUnwrap(WeightInitializer.initialize(constant, seed: 9)).floats()
        }
        XCTAssertEqual(try values(.gamma), [1, 1, 1])
        XCTAssertEqual(try values(.beta), [0, 0, 0])
        XCTAssertEqual(try values(.movingMean), [0, 0, 0])
        XCTAssertEqual(try values(.movingVariance), [1, 1, 1])
        XCTAssertEqual(try values(.bias), [0, 0, 0])
    }
}
