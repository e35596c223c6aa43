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
        let activations: [FusedActivation] = [.none, .relu, .sigmoid, .tanh, .leakyRelu(alpha: 0.1), .clip(min: 0, max: 6), .softmax]
        XCTAssertEqual(Set(activations.map(\.kind)), Set(FusedActivation.Kind.allCases))
        for activation in activations {
            var node = Node(name: "d", op: .dense, inputs: ["x", "k"], outputs: ["d"])
            node.setFusedActivation(.leakyRelu(alpha: 0.5))
            node.setFusedActivation(activation)
            XCTAssertEqual(try node.fusedActivation, activation)
            if activation.kind != .leakyRelu { XCTAssertNil(node.attributes["alpha"], "the old parameter goes") }
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

    func testLayersWithoutAReferenceAreNotConstantEvaluated() {
        XCTAssertNil(OpRegistry.schema(for: .conv2d).reference)
        XCTAssertNil(OpRegistry.schema(for: .dense).reference)
    }
}
