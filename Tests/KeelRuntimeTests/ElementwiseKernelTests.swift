import KeelIR
import XCTest
@testable import KeelRuntime

/// Every element-wise op's kernel, as the runtime lowers it, against the op's reference
/// semantics on its schema (Double, plain loops). Driven by the registry: a new element-wise
/// op is tested here without editing this file.
final class ElementwiseKernelTests: XCTestCase {
    /// Values over the interesting range of every activation, both signs, with an exact zero.
    static let samples: [Float] = (0..<64).map { Float($0 - 32) / 5 } + [0, 1e-3, -1e-3, 30, -30]

    /// Runs a single-node graph on `inputs` (graph inputs, float32) and returns its output.
    private func run(_ node: Node, inputs: [(name: String, values: [Float], shape: [Int])]) throws -> [Float] {
        var graph = Graph(name: node.op.rawValue,
                          inputs: inputs.map { GraphInput(name: $0.name, type: TensorType(.float32, Shape(known: $0.shape))) },
                          nodes: [node], outputs: [GraphOutput(name: "y", value: node.outputs[0])])
        for input in graph.inputs { graph.valueTypes[input.name] = input.type }
        let types = try inferOutputTypes(of: node, inputTypes: inputs.map { TensorType(.float32, Shape(known: $0.shape)) })
        graph.valueTypes[node.outputs[0]] = types[0]
        let model = try CompiledModel(graph: graph, context: ExecutionContext(threads: 1))
        var feeds: [String: Tensor] = [:]
        for input in inputs { feeds[input.name] = try Tensor(shape: input.shape, values: input.values) }
        return try XCTUnwrap(try model.run(feeds)["y"]).values
    }

    private func assertClose(_ actual: [Float], _ expected: [Double], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, what, file: file, line: line)
        for (index, (got, want)) in zip(actual, expected).enumerated() {
            if got.isNaN && want.isNaN { continue }
            if want.isInfinite { XCTAssertEqual(Double(got), want, "\(what) at \(index)", file: file, line: line); continue }
            let tolerance = 1e-5 + 1e-5 * abs(want)
            XCTAssertLessThanOrEqual(abs(Double(got) - want), tolerance, "\(what) at \(index): got \(got), want \(want)", file: file, line: line)
        }
    }

    func testEveryUnaryKernelMatchesTheReference() throws {
        for schema in OpRegistry.all where schema.category == .unaryElementwise {
            let node = Node(name: "y", op: schema.kind, inputs: ["x"], outputs: ["y"])
            let actual = try run(node, inputs: [("x", Self.samples, [Self.samples.count])])
            let expected = try XCTUnwrap(evaluateReference(node, inputs: [ReferenceTensor(values: Self.samples.map(Double.init), shape: [Self.samples.count])],
                                                           outputShape: [Self.samples.count]), schema.kind.rawValue)
            assertClose(actual, expected, schema.kind.rawValue)
        }
    }

    /// Rounding and trigonometry on values whose results are known by hand: ties (ONNX's Round
    /// takes halves to the even neighbour), negative halves, exact multiples of π/2.
    func testRoundingAndTrigonometryAgainstHandDerivedValues() throws {
        let halves: [Float] = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.25, -2.75]
        let cases: [(OpKind, [Float], [Float])] = [
            (.ceil, halves, [-2, -1, -0, 1, 2, 3, 3, -2]),
            (.floor, halves, [-3, -2, -1, 0, 1, 2, 2, -3]),
            (.round, halves, [-2, -2, -0, 0, 2, 2, 2, -3]),
            (.sin, [0, .pi / 2, -.pi / 2, .pi / 6], [0, 1, -1, 0.5]),
            (.cos, [0, .pi, .pi / 3, 2 * .pi], [1, -1, 0.5, 1]),
        ]
        for (op, inputs, expected) in cases {
            let node = Node(name: "y", op: op, inputs: ["x"], outputs: ["y"])
            assertClose(try run(node, inputs: [("x", inputs, [inputs.count])]), expected.map(Double.init), op.rawValue)
        }
    }

    func testEveryBroadcastingKernelMatchesTheReference() throws {
        let a = (0..<24).map { Float($0 - 12) / 4 }
        let b = (1...4).map { Float($0) / 2 }
        var tested: [OpKind] = []
        for schema in OpRegistry.all where schema.category == .broadcastElementwise && schema.inputs.count == 2 {
            // Mod's float form is fmod 1; ops that yield bool have no float32 kernel.
            let node = Node(name: "y", op: schema.kind, inputs: ["a", "b"], outputs: ["y"],
                            attributes: Attributes(schema.attributeSpec("fmod") == nil ? [:] : ["fmod": .int(1)]))
            guard let type = try? inferOutputTypes(of: node, inputTypes: [TensorType(.float32, [2, 3, 4]), TensorType(.float32, [4])]).first,
                  type.dtype == .float32 else { continue }
            tested.append(schema.kind)
            let actual = try run(node, inputs: [("a", a, [2, 3, 4]), ("b", b, [4])])
            let expected = try XCTUnwrap(evaluateReference(node, inputs: [ReferenceTensor(values: a.map(Double.init), shape: [2, 3, 4]),
                                                                          ReferenceTensor(values: b.map(Double.init), shape: [4])],
                                                           outputShape: [2, 3, 4]), schema.kind.rawValue)
            assertClose(actual, expected, schema.kind.rawValue)
        }
        XCTAssertTrue(Set(tested).isSuperset(of: [.add, .sub, .mul, .div, .pow, .max, .min, .prelu, .mod]), "\(tested)")
    }
}
