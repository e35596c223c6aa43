import KeelIR
import KeelPasses
import XCTest
@testable import KeelRuntime

/// ONNX CumSum: the examples of the ONNX operator documentation (expected values from there),
/// run by the kernel on a run-time input and evaluated by the reference that constant folding uses.
final class CumulativeSumTests: XCTestCase {
    private struct Example {
        let shape: [Int], values: [Float], attributes: String, expected: [Float]
    }

    private let examples = [
        Example(shape: [5], values: [1, 2, 3, 4, 5], attributes: "axis=0", expected: [1, 3, 6, 10, 15]),
        Example(shape: [5], values: [1, 2, 3, 4, 5], attributes: "axis=0, exclusive=true", expected: [0, 1, 3, 6, 10]),
        Example(shape: [5], values: [1, 2, 3, 4, 5], attributes: "axis=0, reverse=true", expected: [15, 14, 12, 9, 5]),
        Example(shape: [5], values: [1, 2, 3, 4, 5], attributes: "axis=0, exclusive=true, reverse=true",
                expected: [14, 12, 9, 5, 0]),
        Example(shape: [2, 3], values: [1, 2, 3, 4, 5, 6], attributes: "axis=0", expected: [1, 2, 3, 5, 7, 9]),
        Example(shape: [2, 3], values: [1, 2, 3, 4, 5, 6], attributes: "axis=1", expected: [1, 3, 6, 4, 9, 15]),
        Example(shape: [2, 3], values: [1, 2, 3, 4, 5, 6], attributes: "axis=-1", expected: [1, 3, 6, 4, 9, 15]),
    ]

    private func text(_ example: Example, input: String) -> String {
        let type = "f32[\(example.shape.map(String.init).joined(separator: ","))]"
        let values = example.values.map { "\(Int($0))" }.joined(separator: ", ")
        return """
            graph g
            \(input == "x" ? "input %x: \(type)" : "const @c: \(type) literal = [\(values)]")
            %s = cumsum(\(input == "x" ? "%x" : "@c")) {\(example.attributes)} : \(type)
            %y = add(%s, %s) : \(type)
            output y = %y
            """
    }

    func testDocumentationExamplesOnARunTimeInput() throws {
        for example in examples {
            let graph = try ShapeInference().run(parseIR(text(example, input: "x"))).graph
            let model = try CompiledModel(graph: graph, context: ExecutionContext(threads: 1))
            let result = try model.run(["x": try Tensor(shape: example.shape, values: example.values)])
            XCTAssertEqual(result["y"]?.values, example.expected.map { 2 * $0 }, example.attributes)
        }
    }

    func testDocumentationExamplesFoldAtCompileTime() throws {
        for example in examples {
            let graph = try ShapeInference().run(parseIR(text(example, input: "c"))).graph
            let folded = try PassPipeline(passes: [ConstantFolding()]).run(graph).graph
            XCTAssertEqual(folded.nodes.map(\.op), [.add], example.attributes)
            XCTAssertEqual(folded.constants["s"]?.data?.floats(), example.expected, example.attributes)
        }
    }

    /// An axis outside the input is refused when the graph is checked, naming the axis.
    func testAxisOutOfRangeIsRefused() {
        XCTAssertThrowsError(try ShapeInference().run(parseIR("""
            graph g
            input %x: f32[2,3]
            %y = cumsum(%x) {axis=2} : ?
            output y = %y
            """))) { error in
            XCTAssertTrue("\(error)".contains("axis 2 is out of range"), "\(error)")
        }
    }
}
