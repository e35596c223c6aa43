import KeelIR
import KeelPasses
import KeelRuntime
import XCTest

/// ResNeSt's sums over the radix, on [N,4,2,2] viewed as [N,2,2,2,2]: channel j of the sum is
/// channel j plus channel 2 + j (values written out by hand below).
final class FactoredSumToSplitTests: XCTestCase {
    /// x viewed with its channels factored as [2, 2] (optionally times a gate factored alike),
    /// summed over `axes` with `keepdims`.
    private func factoredSum(gated: Bool = false, axes: String = "[1]", keepdims: Bool = false) throws -> Graph {
        let gateInput = gated ? "input %g: f32[N,4,1,1]" : ""
        let gate = gated ? """
            %gate = reshape(%g) {shape=[0,2,2,1,1]} : f32[N,2,2,1,1]
            %gated = mul(%split, %gate) : f32[N,2,2,2,2]
            """ : ""
        return try ShapeInference().run(parseIR("""
            graph g
            input %x: f32[N,4,2,2]
            \(gateInput)
            %split = reshape(%x) {shape=[0,2,2,2,2]} : f32[N,2,2,2,2]
            \(gate)
            %y = reduce_sum(\(gated ? "%gated" : "%split")) {axes=\(axes), keepdims=\(keepdims)} : ?
            output y = %y
            """)).graph
    }

    private func run(_ graph: Graph, _ inputs: [String: Tensor]) throws -> [Float]? {
        try CompiledModel(graph: graph, context: ExecutionContext(threads: 1)).run(inputs)["y"]?.values
    }

    func testSumOverTheRadixBecomesASplitAndAnAdd() throws {
        let graph = try factoredSum()
        let result = try optimized(graph, [FactoredSumToSplit()])
        XCTAssertEqual(result.graph.ops, [.split, .add])
        XCTAssertEqual(result.graph.nodes[0].attributes["axis"], .int(1))
        XCTAssertEqual(result.graph.outputs.first?.value, "y")
        // Channel c of image 0 holds 4c…4c+3: channel 0 + channel 2, channel 1 + channel 3.
        let values = (0..<16).map(Float.init)
        XCTAssertEqual(try run(result.graph, ["x": try Tensor(shape: [1, 4, 2, 2], values: values)]),
                       [8, 10, 12, 14, 16, 18, 20, 22])
        try assertEquivalent(graph, result.graph)
    }

    /// The gate multiplies the rank-4 value before the split: channel c scaled by g[c].
    func testGatedSumMultipliesBeforeTheSplit() throws {
        let graph = try factoredSum(gated: true)
        let result = try optimized(graph, [FactoredSumToSplit()])
        XCTAssertEqual(result.graph.ops, [.mul, .split, .add])
        let values = (0..<16).map(Float.init)
        let gate: [Float] = [1, 2, 3, 4]
        // 1·(0…3) + 3·(8…11) and 2·(4…7) + 4·(12…15).
        XCTAssertEqual(try run(result.graph, ["x": try Tensor(shape: [1, 4, 2, 2], values: values),
                                              "g": try Tensor(shape: [1, 4, 1, 1], values: gate)]),
                       [24, 28, 32, 36, 56, 62, 68, 74])
        try assertEquivalent(graph, result.graph)
    }

    /// SKNet stacks its paths (unsqueeze, concat) and sums them, plain and times a softmax over the
    /// paths: the pieces are the paths themselves, each times its gate slice as [N,C,1,1].
    func testStackedPathsAreAddedAndGatedBySlice() throws {
        let graph = try ShapeInference().run(parseIR("""
            graph g
            input %a: f32[N,2,1,2]
            input %b: f32[N,2,1,2]
            input %g: f32[N,2,2,1,1]
            %ua = unsqueeze(%a) {axes=[1]} : f32[N,1,2,1,2]
            %ub = unsqueeze(%b) {axes=[1]} : f32[N,1,2,1,2]
            %paths = concat(%ua, %ub) {axis=1} : f32[N,2,2,1,2]
            %plain = reduce_sum(%paths) {axes=[1], keepdims=false} : f32[N,2,1,2]
            %gated = mul(%paths, %g) : f32[N,2,2,1,2]
            %y = reduce_sum(%gated) {axes=[1], keepdims=false} : f32[N,2,1,2]
            output plain = %plain
            output y = %y
            """)).graph
        let result = try optimized(graph, [FactoredSumToSplit()])
        XCTAssertEqual(result.graph.ops, [.add, .split, .reshape, .mul, .reshape, .mul, .add])
        // a = 1…4, b = 10, 20, 30, 40; gate (path, channel): a's channels × 2 and 3, b's × 5 and 7.
        let inputs = ["a": try Tensor(shape: [1, 2, 1, 2], values: [1, 2, 3, 4]),
                      "b": try Tensor(shape: [1, 2, 1, 2], values: [10, 20, 30, 40]),
                      "g": try Tensor(shape: [1, 2, 2, 1, 1], values: [2, 3, 5, 7])]
        let outputs = try CompiledModel(graph: result.graph, context: ExecutionContext(threads: 1)).run(inputs)
        XCTAssertEqual(outputs["plain"]?.values, [11, 22, 33, 44])
        // 1·2 + 10·5, 2·2 + 20·5, 3·3 + 30·7, 4·3 + 40·7.
        XCTAssertEqual(outputs["y"]?.values, [52, 104, 219, 292] as [Float])
        try assertEquivalent(graph, result.graph)
    }

    /// A sum over the inner factor adds neighbouring channels, and a sum that keeps its axis is
    /// 5-D still: neither is a split.
    func testOtherSumsAreKept() throws {
        for graph in [try factoredSum(axes: "[2]"), try factoredSum(keepdims: true)] {
            let result = try optimized(graph, [FactoredSumToSplit()])
            XCTAssertEqual(result.graph.ops, [.reshape, .reduceSum])
        }
    }

    /// Behind an NCHW entry the split and the gated product join the NHWC region on the channel
    /// (last) axis, the computed gate through a reshape to [N,1,1,C]; results stay the same.
    func testSplitAttentionRunsNHWC() throws {
        let graph = try ShapeInference().run(parseIR("""
            graph g
            input %x: f32[N,4,4,8] nhwc
            input %g: f32[N,8,1,1]
            %to_nchw = transpose(%x) {perm=[0,3,1,2]} : f32[N,8,4,4]
            %split = reshape(%to_nchw) {shape=[0,2,4,4,4]} : f32[N,2,4,4,4]
            %weights = sigmoid(%g) : f32[N,8,1,1]
            %gate = reshape(%weights) {shape=[0,2,4,1,1]} : f32[N,2,4,1,1]
            %gated = mul(%split, %gate) : f32[N,2,4,4,4]
            %sum = reduce_sum(%gated) {axes=[1], keepdims=false} : f32[N,4,4,4]
            %y = transpose(%sum) {perm=[0,2,3,1]} : f32[N,4,4,4]
            output y = %y
            """)).graph
        let result = try optimized(graph, [FactoredSumToSplit(), LayoutPropagation()])
        XCTAssertEqual(result.graph.ops, [.sigmoid, .reshape, .mul, .split, .add])
        XCTAssertEqual(result.graph.nodes[3].attributes["axis"], .int(3))
        try assertEquivalent(graph, result.graph)
    }
}
