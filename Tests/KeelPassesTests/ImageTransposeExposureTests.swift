import KeelIR
import KeelPasses
import KeelRuntime
import XCTest

/// PVT v2's and XCiT's way through a depthwise convolution: tokens [N, 6, 4] (a 2×3 image of 4
/// channels) to [N, 4, 2, 3] and back.
final class ImageTransposeExposureTests: XCTestCase {
    private let tokensThroughImage = """
        graph g
        input %x: f32[N,6,4]
        const @w: f32[4,1,3,3] kernel
        %t = transpose(%x) {perm=[0,2,1]} : f32[N,4,6]
        %image = reshape(%t) {shape=[0,4,2,3]} : f32[N,4,2,3]
        %conv = conv2d(%image, @w) {groups=4, kernel_layout="oihw", layout="nchw", padding="same"} : f32[N,4,2,3]
        %flat = reshape(%conv) {shape=[0,4,6]} : f32[N,4,6]
        %y = transpose(%flat) {perm=[0,2,1]} : f32[N,6,4]
        output y = %y
        """

    func testTheTransposesMoveToTheImageSide() throws {
        let graph = bindTestWeights(try ShapeInference().run(parseIR(tokensThroughImage)).graph)
        let result = try optimized(graph, [ImageTransposeExposure()])
        XCTAssertEqual(result.graph.ops, [.reshape, .transpose, .conv2d, .transpose, .reshape])
        XCTAssertEqual(result.graph.nodes[0].attributes["shape"], .ints([0, 2, 3, 4]))
        XCTAssertEqual(result.graph.nodes[1].attributes["perm"], .ints([0, 3, 1, 2]))
        XCTAssertEqual(result.graph.nodes[3].attributes["perm"], .ints([0, 2, 3, 1]))
        XCTAssertEqual(result.graph.nodes[4].attributes["shape"], .ints([0, 6, 4]))

        // Without the convolution the rewrite is a pure data movement: token t, channel c of the
        // input (value 4t + c) comes back where it was.
        let plain = try ShapeInference().run(parseIR("""
            graph g
            input %x: f32[N,6,4]
            %t = transpose(%x) {perm=[0,2,1]} : f32[N,4,6]
            %image = reshape(%t) {shape=[0,4,2,3]} : f32[N,4,2,3]
            %scaled = mul(%image, %image) : f32[N,4,2,3]
            %flat = reshape(%scaled) {shape=[0,4,6]} : f32[N,4,6]
            %y = transpose(%flat) {perm=[0,2,1]} : f32[N,6,4]
            output y = %y
            """)).graph
        let rewritten = try optimized(plain, [ImageTransposeExposure()]).graph
        let values = (0..<24).map(Float.init)
        let output = try CompiledModel(graph: rewritten, context: ExecutionContext(threads: 1))
            .run(["x": try Tensor(shape: [1, 6, 4], values: values)])["y"]
        XCTAssertEqual(output?.values, values.map { $0 * $0 })
        try assertEquivalent(graph, result.graph)
    }

    /// With the transposes beside the convolution, layout propagation runs it NHWC and both go.
    func testTheImageRegionRunsNHWC() throws {
        let graph = bindTestWeights(try ShapeInference().run(parseIR(tokensThroughImage)).graph)
        let result = try optimized(graph, [ImageTransposeExposure(), LayoutPropagation()])
        XCTAssertEqual(result.graph.ops, [.reshape, .conv2d, .reshape])
        XCTAssertNotEqual(result.graph.nodes[1].attributes["layout"], .string("nchw"))
        try assertEquivalent(graph, result.graph)
    }

    /// A transposed value something else reads too stays: moving the transpose would copy twice.
    func testASharedIntermediateIsKept() throws {
        let graph = try ShapeInference().run(parseIR("""
            graph g
            input %x: f32[N,6,4]
            %t = transpose(%x) {perm=[0,2,1]} : f32[N,4,6]
            %image = reshape(%t) {shape=[0,4,2,3]} : f32[N,4,2,3]
            output image = %image
            output t = %t
            """)).graph
        XCTAssertEqual(try optimized(graph, [ImageTransposeExposure()]).graph.ops, [.transpose, .reshape])
    }
}
