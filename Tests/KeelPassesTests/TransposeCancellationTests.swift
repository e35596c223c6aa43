import KeelIR
import KeelPasses
import XCTest

final class TransposeCancellationTests: XCTestCase {
    func testInverseTransposesVanish() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 3, 4, 5])
        builder.layer("to_nchw", .transpose, ["perm": .ints([0, 3, 1, 2])])
        builder.layer("to_nhwc", .transpose, ["perm": .ints([0, 2, 3, 1])])
        builder.layer("relu", .relu)
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [TransposeCancellation()])
        XCTAssertEqual(result.graph.ops, [.relu])
        XCTAssertEqual(result.graph.node(named: "relu")?.inputs, ["input"])
        try assertEquivalent(graph, result.graph)
    }

    func testConsecutiveTransposesCompose() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 3, 4, 5])
        builder.layer("first", .transpose, ["perm": .ints([0, 3, 1, 2])])
        builder.layer("second", .transpose, ["perm": .ints([0, 1, 3, 2])])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [TransposeCancellation()])
        XCTAssertEqual(result.graph.ops, [.transpose])
        // [N,3,4,5] -> [N,5,3,4] -> [N,5,4,3]: one transpose with perm [0,3,2,1].
        XCTAssertEqual(result.graph.node(named: "second")?.attributes["perm"], .ints([0, 3, 2, 1]))
        XCTAssertEqual(result.graph.node(named: "second")?.inputs, ["input"])
        try assertEquivalent(graph, result.graph)
    }

    /// The first transpose also feeds another reader: it stays, the second still composes.
    func testSharedFirstTransposeStays() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 3, 4, 5])
        builder.layer("first", .transpose, ["perm": .ints([0, 3, 1, 2])])
        builder.layer("back", .transpose, ["perm": .ints([0, 2, 3, 1])])
        builder.layer("sum", .add, inputs: ["back", "input"])
        builder.output("y")
        builder.output("nchw", value: "first")
        let graph = try prepared(builder)
        let result = try optimized(graph, [TransposeCancellation()])
        XCTAssertEqual(result.graph.ops, [.transpose, .add])
        XCTAssertEqual(result.graph.node(named: "sum")?.inputs, ["input", "input"])
        try assertEquivalent(graph, result.graph)
    }
}
