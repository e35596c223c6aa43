/// Unary activations, broadcasting binary ops and variadic sum against ONNX Runtime fixtures,
/// plus thread-count independence of the parallel element loops.
import KeelKernels
import XCTest

final class ElementwiseTests: XCTestCase {
    func unaryOperation(_ fixture: FixtureCase) -> UnaryOperation? {
        switch fixture.string("function") {
        case "relu": return .relu
        case "leaky_relu": return .leakyRelu(alpha: fixture.float("alpha") ?? 0)
        case "elu": return .elu(alpha: fixture.float("alpha") ?? 0)
        case "selu": return .selu()
        case "selu_custom": return .selu(alpha: fixture.float("alpha") ?? 0, gamma: fixture.float("gamma") ?? 0)
        case "sigmoid": return .sigmoid
        case "tanh": return .tanh
        case "gelu": return .gelu
        case "gelu_tanh": return .geluTanh
        case "erf": return .erf
        case "softplus": return .softplus
        case "hard_sigmoid": return .hardSigmoid(alpha: fixture.float("alpha") ?? 0, beta: fixture.float("beta") ?? 0)
        case "hard_swish": return .hardSwish
        case "swish": return .swish
        case "clip": return .clip(min: fixture.float("min") ?? 0, max: fixture.float("max") ?? 0)
        case "sqrt": return .sqrt
        case "exp": return .exp
        case "log": return .log
        case "neg": return .negate
        case "abs": return .absolute
        default: return nil
        }
    }

    func testUnaryMatchesONNXRuntime() throws {
        let fixtures = Fixtures.cases("unary")
        XCTAssertEqual(fixtures.count, 20)
        for fixture in fixtures {
            guard let x = fixture.input("x"), let operation = unaryOperation(fixture) else {
                return XCTFail("\(fixture.name): unknown function")
            }
            let input = try Fixtures.floats(x)
            let actual = try withOutput(input.count) { output in
                try input.withUnsafeBufferPointer { source in
                    try Unary.apply(operation, input: source, output: output, count: input.count)
                }
            }
            assertClose(actual, try Fixtures.expected(fixture).values, fixture.name)
        }
    }

    func binaryOperation(_ name: String?) -> BinaryOperation? {
        switch name {
        case "Add": return .add
        case "Sub": return .subtract
        case "Mul": return .multiply
        case "Div": return .divide
        case "Pow": return .power
        case "Max": return .maximum
        case "Min": return .minimum
        case "PRelu": return .prelu
        default: return nil
        }
    }

    func testBinaryMatchesONNXRuntime() throws {
        for fixture in Fixtures.cases("binary") {
            guard let aTensor = fixture.input("a"), let bTensor = fixture.input("b"),
                  let operation = binaryOperation(fixture.string("function")) else {
                return XCTFail("\(fixture.name): incomplete case")
            }
            let (a, b) = (try Fixtures.floats(aTensor), try Fixtures.floats(bTensor))
            let expected = try Fixtures.expected(fixture)
            XCTAssertEqual(try Broadcast.shape(aTensor.shape, bTensor.shape), expected.shape, fixture.name)
            for threads in [1, 2] {
                let actual = try withOutput(expected.values.count) { output in
                    try a.withUnsafeBufferPointer { left in
                        try b.withUnsafeBufferPointer { right in
                            try Broadcast.binary(operation, a: left, aShape: aTensor.shape, b: right, bShape: bTensor.shape,
                                                 output: output, context: KernelContext(threads: threads))
                        }
                    }
                }
                assertClose(actual, expected.values, "\(fixture.name) threads \(threads)")
            }
        }
    }

    /// A short vector repeated along a contiguous operand (an image's per-channel mean in NHWC), on
    /// either side, with row counts that leave partial blocks, against the element-wise definition.
    func testRepeatedShortOperandMatchesTheDefinition() throws {
        for (shape, period) in [([2, 37, 5, 3], 3), ([1, 1000, 7], 7), ([9, 63], 63), ([4, 2], 2)] {
            let full = seededValues(shape.reduce(1, *), seed: UInt64(period))
            let short = seededValues(period, seed: UInt64(period) + 1).map { $0 + 2 }
            for (operation, function) in [(BinaryOperation.subtract, { (a: Float, b: Float) in a - b }),
                                          (.divide, { (a: Float, b: Float) in a / b })] {
                for shortFirst in [false, true] {
                    let expected = full.indices.map { index in
                        shortFirst ? function(short[index % period], full[index]) : function(full[index], short[index % period])
                    }
                    for threads in [1, 2] {
                        let actual = try withOutput(full.count) { output in
                            try full.withUnsafeBufferPointer { full in
                                try short.withUnsafeBufferPointer { short in
                                    try Broadcast.binary(operation, a: shortFirst ? short : full, aShape: shortFirst ? [period] : shape,
                                                         b: shortFirst ? full : short, bShape: shortFirst ? shape : [period],
                                                         output: output, context: KernelContext(threads: threads))
                                }
                            }
                        }
                        XCTAssertEqual(actual, expected, "\(shape) \(operation) short first \(shortFirst) threads \(threads)")
                    }
                }
            }
        }
    }

    func testSumMatchesONNXRuntime() throws {
        for fixture in Fixtures.cases("sum") {
            let arrays = try fixture.inputs.map { try Fixtures.floats($0) }
            let shapes = fixture.inputs.map(\.shape)
            let expected = try Fixtures.expected(fixture)
            let actual = try withOutput(expected.values.count) { output in
                try withBuffers(arrays) { buffers in
                    try Broadcast.sum(inputs: buffers, shapes: shapes, output: output)
                }
            }
            assertClose(actual, expected.values, fixture.name)
        }
    }

    func testUnaryResultsDoNotDependOnThreads() throws {
        let input = seededValues(100_003, seed: 9)
        var results: [[Float]] = []
        for threads in [1, 2] {
            results.append(try withOutput(input.count) { output in
                try input.withUnsafeBufferPointer { source in
                    try Unary.apply(.gelu, input: source, output: output, count: input.count,
                                    context: KernelContext(threads: threads))
                }
            })
        }
        XCTAssertEqual(results[0], results[1])
    }

    func testIncompatibleShapesThrow() {
        XCTAssertThrowsError(try Broadcast.shape([2, 3], [4, 3]))
        XCTAssertEqual(try Broadcast.shape([5, 1, 3], [4, 1]), [5, 4, 3])
    }
}

/// Exposes several arrays as buffers at once for variadic kernels.
func withBuffers<Result>(_ arrays: [[Float]], _ body: ([UnsafeBufferPointer<Float>]) throws -> Result) rethrows -> Result {
    func nest(_ index: Int, _ collected: [UnsafeBufferPointer<Float>]) throws -> Result {
        if index == arrays.count { return try body(collected) }
        return try arrays[index].withUnsafeBufferPointer { try nest(index + 1, collected + [$0]) }
    }
    return try nest(0, [])
}
