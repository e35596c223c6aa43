import KeelIR
import XCTest

/// The IR text parser is the printer's inverse: printed text reads back to the same graph.
final class IRParserTests: XCTestCase {
    func testPrintedTextReadsBackToTheSameText() throws {
        let text = printIR(tinyGraph())
        let graph = try parseIR(text)
        XCTAssertEqual(printIR(graph), text)
        try verify(graph)
        XCTAssertEqual(graph.nodes.map(\.name), ["c1", "pool1", "act", "flat", "fc"], "nodes are named after their first output")
        XCTAssertEqual(graph.constants["c1/kernel"]?.trainable, false)
        XCTAssertEqual(graph.nodes[0].locations, [SourceLocation(file: "tiny.keel", line: 3, column: 5)])
    }

    /// Token rows of a symbolic batch print as multiples of it (`49·N`) and read back as such.
    func testMultiplesOfTheBatchReadBack() throws {
        let text = """
        graph rows
        input %x: f32[N,49,8]
        %r = reshape(%x) {shape=[-1,8]} : f32[49·N,8]

        """
        let graph = try parseIR(text)
        XCTAssertEqual(graph.valueTypes["r"]?.shape, Shape([.scaled(49, "N"), 8]))
        XCTAssertEqual(printIR(graph), text)
    }

    func testEveryAttributeKindAbsentInputsMultipleOutputsAndNamedLocations() throws {
        let text = """
        graph kinds
        input %x: f32[N,4,6]
        const @scale: f32[2] literal frozen
        %a, %b = split(%x) {axis=-1, flag=true, mode="x", names=["p","q"], ratios=[0.5,1.5], sizes=[3,3], alpha=-0.25, low=-inf} : f32[N,4,3], f32[N,4,3]  # model.onnx(split/node)
        %c = layer_norm(%a, @scale, _) : ?  # g.keel:2:1, g.keel:9:12

        """
        XCTAssertEqual(printIR(try parseIR(text)), text.replacingOccurrences(of: "@scale, _)", with: "@scale)")
            .replacingOccurrences(of: "{axis=-1, flag=true, mode=\"x\", names=[\"p\",\"q\"], ratios=[0.5,1.5], sizes=[3,3], alpha=-0.25, low=-inf}",
                                  with: "{alpha=-0.25, axis=-1, flag=true, low=-inf, mode=\"x\", names=[\"p\",\"q\"], ratios=[0.5,1.5], sizes=[3,3]}"))
        let graph = try parseIR(text)
        XCTAssertEqual(graph.nodes[0].attributes["ratios"], .floats([0.5, 1.5]))
        XCTAssertEqual(graph.nodes[0].attributes["sizes"], .ints([3, 3]))
        XCTAssertEqual(graph.nodes[1].inputs, ["a", "scale", ""])
        XCTAssertNil(graph.valueTypes["c"])
        XCTAssertEqual(graph.nodes[0].locations, [.named("model.onnx", "split/node")])
    }

    func testConstantValuesForTestsThatNeedThem() throws {
        let graph = try parseIR("graph v\nconst @b: f32[2,2] bias = [0.5, -1.0, 2, 3]\n")
        XCTAssertEqual(graph.constants["b"]?.data?.floats(), [0.5, -1, 2, 3])
    }

    func testErrorsPointAtTheLineAndColumn() {
        assertParseError("ir:2:6: error: unknown op 'rleu'; did you mean 'relu'?", "graph g\n%y = rleu(%x) : f32[1]\n")
        assertParseError("ir:2:11: error: unknown dtype 'f33'", "graph g\ninput %x: f33[1]\n")
        assertParseError("ir:2:1: error: expected 'graph', 'input', 'const', 'output' or a node line, found 'node'", "graph g\nnode x\n")
        assertParseError("ir:2:25: error: 1 values for shape [2]", "graph g\nconst @b: f32[2] bias = [1]\n")
    }

    private func assertParseError(_ headline: String, _ text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parseIR(text), file: file, line: line) { error in
            XCTAssertEqual((error as? Diagnostic)?.headline, headline, file: file, line: line)
        }
    }
}
