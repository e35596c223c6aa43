import KeelIR
import XCTest

/// The traits on the schemas are what passes and lowering consult instead of their own op
/// lists; these tests pin the rules that make those derived lists right.
final class OpTraitTests: XCTestCase {
    func testEveryUnaryElementwiseOpIsInPlaceLayoutAgnosticAndHasAReference() {
        let unary = OpRegistry.all.filter { $0.category == .unaryElementwise }
        XCTAssertGreaterThanOrEqual(unary.count, 18)
        for schema in unary {
            XCTAssertEqual(schema.aliasing, .inPlace, schema.kind.rawValue)
            XCTAssertTrue(schema.isLayoutAgnostic, schema.kind.rawValue)
            XCTAssertNotNil(schema.reference, schema.kind.rawValue)
            XCTAssertEqual(schema.inputs.count, 1, schema.kind.rawValue)
        }
    }

    func testViewsAreExactlyTheViewCategoryAndEvaluateToTheirInput() {
        for schema in OpRegistry.all {
            XCTAssertEqual(schema.aliasing == .view, schema.category == .view, schema.kind.rawValue)
        }
        let node = Node(name: "r", op: .reshape, inputs: ["x"], outputs: ["r"], attributes: Attributes(["shape": .ints([2, 2])]))
        let input = ReferenceTensor(values: [1, 2, 3, 4], shape: [4])
        XCTAssertEqual(evaluateReference(node, inputs: [input], outputShape: [2, 2]), [1, 2, 3, 4])
    }

    func testOnlyOpsWithAnEpilogueAcceptFusedActivationsAndEveryEpilogueFormHasATaker() throws {
        XCTAssertEqual(OpRegistry.all.filter(\.hasEpilogue).map(\.kind), [.conv2d, .dense])
        let takers = Set(OpRegistry.all.flatMap(\.fusedActivations))
        for schema in OpRegistry.all {
            guard let form = schema.epilogueActivation else { continue }
            let node = Node(name: "a", op: schema.kind, inputs: ["x"], outputs: ["a"])
            let activation = try form(AttributeReader(node: node))
            XCTAssertTrue(takers.contains(activation.kind), "\(schema.kind.rawValue) fuses as \(activation.kind.rawValue), which no op accepts")
        }
    }

    func testFusedActivationRoundTripsThroughNodeAttributes() throws {
        let activations: [FusedActivation] = [.none, .relu, .sigmoid, .tanh, .leakyRelu(alpha: 0.1), .clip(min: 0, max: 6), .swish,
                                              .hardSwish, .hardSigmoid(alpha: 0.25, beta: 0.4), .softmax, .gelu, .geluTanh]
        XCTAssertEqual(Set(activations.map(\.kind)), Set(FusedActivation.Kind.allCases))
        for activation in activations {
            var node = Node(name: "d", op: .dense, inputs: ["x", "k"], outputs: ["d"])
            node.setFusedActivation(.leakyRelu(alpha: 0.5))
            node.setFusedActivation(activation)
            XCTAssertEqual(try node.fusedActivation, activation)
            // hard_sigmoid has an alpha of its own; the others must not keep leaky_relu's.
            if !activation.kind.parameterNames.contains("alpha") {
                XCTAssertNil(node.attributes["alpha"], "the old parameter goes")
            }
        }
    }

    func testAnActivationTheOpDoesNotAcceptIsADiagnosticAtTheNode() {
        let node = Node(name: "c", op: .conv2d, inputs: ["x", "k"], outputs: ["c"], attributes: Attributes(["activation": .string("softmax")]))
        XCTAssertThrowsError(try node.fusedActivation) { error in
            let message = (error as? Diagnostic)?.message ?? ""
            XCTAssertTrue(message.contains("activation") && message.contains("softmax"), message)
        }
    }

    func testReferenceBroadcastsLikeNumPy() {
        let node = Node(name: "s", op: .sub, inputs: ["a", "b"], outputs: ["s"])
        let a = ReferenceTensor(values: [10, 20, 30, 40, 50, 60], shape: [2, 3])
        let b = ReferenceTensor(values: [1, 2, 3], shape: [3])
        XCTAssertEqual(evaluateReference(node, inputs: [a, b], outputShape: [2, 3]), [9, 18, 27, 39, 48, 57])
        let column = ReferenceTensor(values: [1, 2], shape: [2, 1])
        XCTAssertEqual(evaluateReference(node, inputs: [a, column], outputShape: [2, 3]), [9, 19, 29, 38, 48, 58])
        XCTAssertNil(evaluateReference(node, inputs: [a, ReferenceTensor(values: [1, 2], shape: [2])], outputShape: [2, 3]),
                     "shapes that do not broadcast are not evaluated")
    }

    /// Convolutions never evaluate at compile time; dense and matmul do only up to
    /// `maximumFoldedMultiplies` multiply-adds (x·W + b checked here by hand).
    func testLargeProductsAreNotConstantEvaluated() {
        XCTAssertNil(OpRegistry.schema(for: .conv2d).reference)
        let dense = Node(name: "d", op: .dense, inputs: ["x", "w", "b"], outputs: ["d"])
        let x = ReferenceTensor(values: [1, 2, 3, 4], shape: [2, 2])
        let w = ReferenceTensor(values: [1, 0, -1, 2, 1, 0], shape: [2, 3])
        let b = ReferenceTensor(values: [10, 20, 30], shape: [3])
        XCTAssertEqual(evaluateReference(dense, inputs: [x, w, b], outputShape: [2, 3]), [15, 22, 29, 21, 24, 27])
        let side = 1 << 9
        let large = ReferenceTensor(values: [Double](repeating: 1, count: side * side), shape: [side, side])
        let matmul = Node(name: "m", op: .matmul, inputs: ["a", "b"], outputs: ["m"])
        XCTAssertNil(evaluateReference(matmul, inputs: [large, large], outputShape: [side, side]),
                     "a 512×512×512 product is left to the runtime")
    }
}

/// The reference semantics of the ops exporters use in shape arithmetic, on the ONNX operator
/// documentation's own examples.
final class ShapeArithmeticReferenceTests: XCTestCase {
    private func evaluate(_ op: OpKind, _ inputs: [ReferenceTensor], _ attributes: [String: AttributeValue] = [:]) -> [Double]? {
        let node = Node(name: "z", op: op, inputs: inputs.indices.map { "in\($0)" }, outputs: ["z"], attributes: Attributes(attributes))
        let sizes: [Int] = inputs.map { $0.shape.reduce(1, *) }
        let largest: Int = sizes.indices.max { sizes[$0] < sizes[$1] } ?? 0
        let shape: [Int] = inputs.isEmpty ? [] : inputs[largest].shape
        return evaluateReference(node, inputs: inputs, outputShape: shape)
    }

    func testModTakesTheDivisorsSignUnlessFmod() throws {
        let x = ReferenceTensor(values: [-4, 7, 5, 4, -7, 8], shape: [6])
        let y = ReferenceTensor(values: [2, -3, 8, -2, 3, 5], shape: [6])
        XCTAssertEqual(evaluate(.mod, [x, y]), [0, -2, 5, 0, 2, 3])
        let fmod = try XCTUnwrap(evaluate(.mod, [ReferenceTensor(values: [-4.5, 7.25, 5, 4.5, -7.25, 8], shape: [6]),
                                                ReferenceTensor(values: [2, -3, 8, -2, 3, 5], shape: [6])], ["fmod": .int(1)]))
        XCTAssertEqual(fmod, [-0.5, 1.25, 5, 0.5, -1.25, 3])
    }

    func testEqualAndWhereBroadcast() {
        let shape = ReferenceTensor(values: [0, 3, 0, 5], shape: [4])
        let zero = ReferenceTensor(values: [0], shape: [1])
        XCTAssertEqual(evaluate(.equal, [shape, zero]), [1, 0, 1, 0])
        let condition = ReferenceTensor(values: [1, 0, 1, 0], shape: [4])
        XCTAssertEqual(evaluate(.where, [condition, ReferenceTensor(values: [1], shape: [1]), shape]), [1, 3, 1, 5],
                       "the exporters' 'replace 0 by 1' in a reshape target")
    }

    func testTypesOfTheBoolOps() throws {
        XCTAssertEqual(try infer(.equal, "e", [("a", TensorType(.int64, [4])), ("b", TensorType(.int64, [1]))]), TensorType(.bool, [4]))
        XCTAssertEqual(try infer(.where, "w", [("c", TensorType(.bool, [2, 1])), ("x", TensorType(.float32, [3])), ("y", f32(2, 3))]), f32(2, 3))
        assertDiagnostic("where 'w' condition input 'c' [4] is i64, not bool") {
            try infer(.where, "w", [("c", TensorType(.int64, [4])), ("x", TensorType(.int64, [4])), ("y", TensorType(.int64, [4]))])
        }
        assertDiagnostic("mod 'm' takes the divisor's sign (fmod 0) on integers only; f32 needs fmod 1") {
            try infer(.mod, "m", [("a", f32(4)), ("b", f32(4))])
        }
    }
}
