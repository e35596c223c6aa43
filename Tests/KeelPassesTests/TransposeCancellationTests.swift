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

    /// MaxViT's window partition behind an NHWC→NCHW boundary: [N,4,6,3] to NCHW, split into 2×2
    /// windows of 2×3, windows first. The split moves before the first transpose (onto H and W of
    /// the NHWC input, the run-time batch kept by 0) and one transpose is left.
    func testASplitBetweenTwoTransposesMovesBeforeTheFirst() throws {
        let text = """
        graph g
        input %x: f32[N,4,6,3]
        %nchw = transpose(%x) {perm=[0,3,1,2]} : f32[N,3,4,6]
        %split = reshape(%nchw) {shape=[0,3,2,2,2,3]} : f32[N,3,2,2,2,3]
        %windows = transpose(%split) {perm=[0,2,4,3,5,1]} : f32[N,2,2,2,3,3]
        %rows = reshape(%windows) {shape=[0,4,6,3]} : f32[N,4,6,3]
        %y = relu(%rows) : f32[N,4,6,3]
        output y = %y
        """
        let graph = try parseIR(text)
        let result = try optimized(graph, [TransposeCancellation(), DeadCodeElimination()])
        XCTAssertEqual(result.graph.ops, [.reshape, .transpose, .reshape, .relu])
        let split = try XCTUnwrap(result.graph.nodes.first)
        XCTAssertEqual(split.inputs, ["x"])
        XCTAssertEqual(split.attributes["shape"], .ints([0, 2, 2, 2, 3, 3]))
        // [N, 2(h'), 2(hi), 2(w'), 3(wi), 3(c)] read as [N, h', w', hi, wi, c].
        XCTAssertEqual(result.graph.node(named: "windows")?.attributes["perm"], .ints([0, 1, 3, 2, 4, 5]))
        for batch in [1, 3] { try assertEquivalent(graph, result.graph, batch: batch) }
    }

    /// A reshape that merges axes is left alone; a split whose transposes then cancel leaves only
    /// the reshape (the run-time batch, moved and moved back, stays an axis of its own, copied by 0).
    func testMergesAreLeftAndSplitsThatCancelVanish() throws {
        let merging = """
        graph g
        input %x: f32[N,4,6,3]
        %nchw = transpose(%x) {perm=[0,3,1,2]} : f32[N,3,4,6]
        %merged = reshape(%nchw) {shape=[0,12,6]} : f32[N,12,6]
        %back = transpose(%merged) {perm=[0,2,1]} : f32[N,6,12]
        output y = %back
        """
        let cancelling = """
        graph g
        input %x: f32[N,4,6]
        %moved = transpose(%x) {perm=[1,0,2]} : f32[4,N,6]
        %split = reshape(%moved) {shape=[2,2,-1,6]} : f32[2,2,N,6]
        %back = transpose(%split) {perm=[2,0,1,3]} : f32[N,2,2,6]
        output y = %back
        """
        for (text, transposes) in [(merging, 2), (cancelling, 0)] {
            let graph = try parseIR(text)
            let result = try optimized(graph, [TransposeCancellation(), DeadCodeElimination()])
            XCTAssertEqual(result.graph.count(.transpose), transposes, text)
            try assertEquivalent(graph, result.graph, batch: 2)
        }
    }
}
