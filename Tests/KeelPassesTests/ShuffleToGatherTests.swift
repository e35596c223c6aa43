import KeelIR
import KeelPasses
import KeelRuntime
import XCTest

/// ShuffleNet's channel shuffle, [N,6,2,2] in two groups of three: the output channel j = 2i + k
/// takes input channel 3k + i, so the order is [0,3,1,4,2,5] (written out by hand).
final class ShuffleToGatherTests: XCTestCase {
    /// x split into [2,3] channels, the factored value transposed by `perm`, merged back.
    private func shuffle(perm: String) throws -> Graph {
        try ShapeInference().run(parseIR("""
            graph g
            input %x: f32[N,6,2,2]
            %split = reshape(%x) {shape=[0,2,3,2,2]} : f32[N,2,3,2,2]
            %swap = transpose(%split) {perm=\(perm)} : ?
            %y = reshape(%swap) {shape=[0,6,2,2]} : f32[N,6,2,2]
            output y = %y
            """)).graph
    }

    func testChannelShuffleBecomesAGather() throws {
        let graph = try shuffle(perm: "[0,2,1,3,4]")
        let result = try optimized(graph, [ShuffleToGather()])
        XCTAssertEqual(result.graph.ops, [.gather])
        let gather = try XCTUnwrap(result.graph.nodes.first)
        XCTAssertEqual(gather.attributes["axis"], .int(1))
        XCTAssertEqual(result.graph.constants[gather.inputs[1]]?.data?.int64s(), [0, 3, 1, 4, 2, 5])
        XCTAssertEqual(result.graph.outputs.first?.value, "y")

        // Image 0 holds 0…23 (channel c at 4c…4c+3): each channel's four pixels move whole.
        let values = (0..<24).map(Float.init)
        let output = try CompiledModel(graph: result.graph, context: ExecutionContext(threads: 1))
            .run(["x": try Tensor(shape: [1, 6, 2, 2], values: values)])["y"]
        let expected = [0, 3, 1, 4, 2, 5].flatMap { channel in (0..<4).map { Float(4 * channel + $0) } }
        XCTAssertEqual(output?.values, expected)
        try assertEquivalent(graph, result.graph)
    }

    /// A transpose that also moves a spatial axis is more than a reordering of one axis.
    func testTransposeAcrossAxesIsKept() throws {
        let graph = try shuffle(perm: "[0,2,1,4,3]")
        let result = try optimized(graph, [ShuffleToGather()])
        XCTAssertEqual(result.graph.ops, [.reshape, .transpose, .reshape])
        XCTAssertEqual(result.explanations, ["shuffle-to-gather: kept 'split': reshape, transpose and reshape do more than reorder one axis"])
    }

    /// Behind an NCHW entry the gather joins the NHWC region on the channel (last) axis, and a
    /// crop (slice of H and W) does too with its axes mapped; results stay the same.
    func testShuffleAndCropRunNHWC() throws {
        let graph = try ShapeInference().run(parseIR("""
            graph g
            input %x: f32[N,4,4,6] nhwc
            %to_nchw = transpose(%x) {perm=[0,3,1,2]} : f32[N,6,4,4]
            %split = reshape(%to_nchw) {shape=[0,2,3,4,4]} : f32[N,2,3,4,4]
            %swap = transpose(%split) {perm=[0,2,1,3,4]} : f32[N,3,2,4,4]
            %shuffled = reshape(%swap) {shape=[0,6,4,4]} : f32[N,6,4,4]
            %crop = slice(%shuffled) {axes=[2,3], ends=[4,3], starts=[1,0]} : f32[N,6,3,3]
            %half = slice(%crop) {axes=[1], ends=[3], starts=[0]} : f32[N,3,3,3]
            %y = transpose(%half) {perm=[0,2,3,1]} : f32[N,3,3,3]
            output y = %y
            """)).graph
        let result = try optimized(graph, [ShuffleToGather(), LayoutPropagation()])
        XCTAssertEqual(result.graph.ops, [.gather, .slice, .slice])
        XCTAssertEqual(result.graph.nodes[0].attributes["axis"], .int(3))
        XCTAssertEqual(result.graph.nodes[1].attributes["axes"], .ints([1, 2]))
        XCTAssertEqual(result.graph.nodes[2].attributes["axes"], .ints([3]))
        try assertEquivalent(graph, result.graph)
    }
}
