import KeelIR
import KeelPasses
import KeelRuntime
import XCTest

/// EdgeNeXt's positional encoding in small: a mask of the batch's shape (a constant expanded to
/// [N,2,4]) numbered by cumulative sums, joined and added to the input. The values are written
/// out by hand: channel 0 counts rows from the top (1, 2), channel 1 counts the columns still to
/// the right of each pixel (3, 2, 1, 0: reverse, exclusive).
final class ExpandSinkingTests: XCTestCase {
    private func encoding(rowSumAxis: Int = 1) throws -> Graph {
        try ShapeInference().run(parseIR("""
            graph g
            input %x: f32[N,2,2,4]
            const @zeros: f32[1,2,4] literal = [0, 0, 0, 0, 0, 0, 0, 0]
            %mask = expand(@zeros) {shape=[1,2,4], symbols=["N","",""]} : f32[N,2,4]
            %masked = cast(%mask) {to="bool"} : bool[N,2,4]
            %kept = not(%masked) : bool[N,2,4]
            %ones = cast(%kept) {to="f32"} : f32[N,2,4]
            %rows = cumsum(%ones) {axis=\(rowSumAxis)} : f32[N,2,4]
            %columns = cumsum(%ones) {axis=2, exclusive=true, reverse=true} : f32[N,2,4]
            %row_channel = unsqueeze(%rows) {axes=[1]} : f32[N,1,2,4]
            %column_channel = unsqueeze(%columns) {axes=[1]} : f32[N,1,2,4]
            %position = concat(%row_channel, %column_channel) {axis=1} : f32[N,2,2,4]
            %y = add(%x, %position) : f32[N,2,2,4]
            output y = %y
            """)).graph
    }

    func testPositionalEncodingFoldsToOneConstant() throws {
        let graph = try encoding()
        let result = try optimized(graph, [ExpandSinking(), ConstantFolding(), DeadCodeElimination()])
        // Only the add runs, broadcasting the folded encoding; no bool value reaches the plan.
        XCTAssertEqual(result.graph.ops, [.add])
        let position: [Float] = [1, 1, 1, 1, 2, 2, 2, 2, 3, 2, 1, 0, 3, 2, 1, 0]
        let encoding = try XCTUnwrap(result.graph.constants[result.graph.nodes[0].inputs[1]])
        XCTAssertEqual(encoding.type.shape, [1, 2, 2, 4])
        XCTAssertEqual(encoding.data?.floats(), position)
        for batch in [1, 3] {
            let values = (0..<(batch * 16)).map { Float($0) / 4 }
            let output = try CompiledModel(graph: result.graph, context: ExecutionContext(threads: 2))
                .run(["x": try Tensor(shape: [batch, 2, 2, 4], values: values)])["y"]
            XCTAssertEqual(output?.shape, [batch, 2, 2, 4])
            XCTAssertEqual(output?.values, values.enumerated().map { $1 + position[$0 % 16] }, "batch \(batch)")
        }
    }

    /// A sum along the expanded axis (the batch) differs from image to image: the expand stays
    /// before it, named in the explanation.
    func testSumAlongTheExpandedAxisIsKept() throws {
        let result = try optimized(try encoding(rowSumAxis: 0), [ExpandSinking()])
        XCTAssertTrue(result.explanations.contains("expand-sinking: kept an expand before 'rows': it sums along an expanded axis"),
                      "\(result.explanations)")
        XCTAssertTrue(result.graph.nodes.contains { $0.name == "rows" && $0.inputs == ["ones"] })
    }

    /// A reshape that merges the batch into another axis, and a join along the batch, change what
    /// each image sees: both keep their expand.
    func testRegroupingAndJoiningAlongTheExpandedAxisAreKept() throws {
        let graph = try ShapeInference().run(parseIR("""
            graph g
            input %x: f32[N,4]
            const @row: f32[1,4] literal = [1, 2, 3, 4]
            %rows = expand(@row) {shape=[1,4], symbols=["N",""]} : f32[N,4]
            %flat = reshape(%rows) {shape=[-1]} : f32[4·N]
            %three = expand(@row) {shape=[3,4]} : f32[3,4]
            %stacked = concat(%three, %three) {axis=0} : f32[6,4]
            %y = add(%x, %rows) : f32[N,4]
            output y = %y
            output flat = %flat
            output stacked = %stacked
            """)).graph
        let result = try optimized(graph, [ExpandSinking()])
        XCTAssertEqual(result.graph.ops, graph.ops)
        XCTAssertTrue(result.explanations.contains("expand-sinking: kept an expand before 'flat': it regroups an expanded axis"),
                      "\(result.explanations)")
        XCTAssertTrue(result.explanations.contains(
            "expand-sinking: kept an expand before 'stacked': it joins along an expanded axis or with a value that is not expanded"),
                      "\(result.explanations)")
        try assertEquivalent(graph, result.graph, batch: 3)
    }

    /// timm's ECA gate multiplies `x * y.expand_as(x)`: the mul reads the [N,C,1,1] gate and
    /// broadcasts it, and the expand (which kept whole stages NCHW) is gone.
    func testElementwiseOpReadsThroughAnExpandOfActivations() throws {
        let graph = try ShapeInference().run(parseIR("""
            graph g
            input %x: f32[N,4,3,3]
            %pooled = reduce_mean(%x) {axes=[2,3], keepdims=true} : f32[N,4,1,1]
            %gate = sigmoid(%pooled) : f32[N,4,1,1]
            %spread = expand(%gate) {shape=[1,4,3,3], symbols=["N","","",""]} : f32[N,4,3,3]
            %y = mul(%x, %spread) : f32[N,4,3,3]
            output y = %y
            """)).graph
        let result = try optimized(graph, [ExpandSinking(), DeadCodeElimination()])
        XCTAssertEqual(result.graph.ops, [.reduceMean, .sigmoid, .mul])
        XCTAssertEqual(result.graph.nodes.last?.inputs, ["x", "gate"])
        try assertEquivalent(graph, result.graph, batch: 3)
    }
}
