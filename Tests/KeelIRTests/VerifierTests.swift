import KeelIR
import XCTest

final class VerifierTests: XCTestCase {
    private func assertRejects(_ graph: Graph, _ message: String, requiringTypes: Bool = true,
                               file: StaticString = #filePath, line: UInt = #line) {
        assertDiagnostic(message, file: file, line: line) { try verify(graph, requiringTypes: requiringTypes) }
    }

    func testAcceptsAWellFormedGraph() throws {
        try verify(tinyGraph())
    }

    func testUndefinedInput() {
        var graph = tinyGraph()
        graph.nodes[1].inputs = ["c2"]
        assertRejects(graph, "max_pool2d 'pool1' reads undefined value 'c2'")
    }

    func testOutOfOrderAndCycle() {
        var graph = tinyGraph()
        graph.nodes.swapAt(1, 2)
        assertRejects(graph, "leaky_relu 'act' reads 'pool1' before node 'pool1' produces it; nodes are not in topological order")
        var cyclic = tinyGraph()
        cyclic.nodes[1].inputs = ["act"]
        assertRejects(cyclic, "max_pool2d 'pool1' is part of a cycle: pool1 -> act -> pool1")
    }

    func testDuplicateNames() {
        var graph = tinyGraph()
        graph.nodes[2].name = "pool1"
        assertRejects(graph, "leaky_relu 'pool1' reuses the layer name 'pool1'")
        var values = tinyGraph()
        values.nodes[2].outputs = ["c1"]
        assertRejects(values, "leaky_relu 'act' redefines value 'c1'")
    }

    func testWrongArity() {
        var graph = tinyGraph()
        graph.nodes[1].inputs = ["c1", "c1"]
        assertRejects(graph, "max_pool2d 'pool1' takes inputs (x) but has 2")
        var missing = tinyGraph()
        missing.nodes[0].inputs = ["image"]
        assertRejects(missing, "conv2d 'c1' takes inputs (x, kernel, bias?, residual?) but is missing 'kernel'")
    }

    func testParameterMustBeAConstant() {
        var graph = tinyGraph()
        graph.nodes[4].inputs = ["flat", "act"]
        assertRejects(graph, "dense 'fc' 'kernel' input must name a constant, but 'act' is a computed value")
    }

    func testUnknownAttribute() {
        var graph = tinyGraph()
        graph.nodes[3].attributes["axes"] = .int(1)
        assertRejects(graph, "flatten 'flat' has unknown attribute 'axes'; it takes axis")
    }

    func testBadOutput() {
        var graph = tinyGraph()
        graph.outputs = [GraphOutput(name: "logits", value: "softmax")]
        assertRejects(graph, "output 'logits' names undefined value 'softmax'")
    }

    func testMissingTypes() throws {
        var graph = tinyGraph()
        graph.valueTypes = [:]
        assertRejects(graph, "conv2d 'c1' output 'c1' has no type; run shape inference first")
        try verify(graph, requiringTypes: false)
    }
}
