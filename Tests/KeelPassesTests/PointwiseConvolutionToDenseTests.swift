import KeelIR
import KeelPasses
import XCTest

final class PointwiseConvolutionToDenseTests: XCTestCase {
    /// The ViT head's projection: Conv2D 1×1 "same" on NHWC becomes a dense over channels.
    func testViTProjectionBecomesDense() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 3, 3, 16])
        builder.layer("conv2d", .conv2d, parameters: [(.kernel, [1, 1, 16, 24]), (.bias, [24])], ["padding": .string("same")])
        builder.layer("reshape", .reshape, ["shape": .ints([0, -1, 24])])
        builder.layer("layer_normalization", .layerNorm, parameters: [(.gamma, [24]), (.beta, [24])])
        builder.output("tokens")
        let graph = try prepared(builder)
        let result = try optimized(graph, [PointwiseConvolutionToDense()])
        XCTAssertEqual(result.graph.ops, [.dense, .reshape, .layerNorm])
        let dense = try XCTUnwrap(result.graph.node(named: "conv2d"))
        XCTAssertEqual(dense.inputs, ["input", "conv2d/kernel", "conv2d/bias"])
        XCTAssertEqual(dense.attributes, Attributes(), "in_out is dense's default layout")
        XCTAssertEqual(result.graph.constants["conv2d/kernel"]?.type, TensorType(.float32, [16, 24]))
        XCTAssertEqual(result.graph.valueTypes["conv2d"], TensorType(.float32, ["N", 3, 3, 24]))
        XCTAssertEqual(result.log, ["pointwise-conv-to-dense: 1 1×1 convs turned into dense, 0 nodes removed, 0 weight bytes changed"])
        try assertEquivalent(graph, result.graph)
    }

    /// ONNX exports' OIHW 1×1 convs stay convs: they run on prepared panels, faster than out_in dense.
    func testOIHWKernelStaysAConvolution() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 4, 4, 6])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [5, 6, 1, 1])],
                      ["kernel_layout": .string("oihw"), "activation": .string("relu")])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [PointwiseConvolutionToDense()])
        XCTAssertEqual(result.graph, graph)
        XCTAssertEqual(result.explanations, [
            "pointwise-conv-to-dense: kept 'conv': its kernel is OIHW, which runs faster as a convolution on prepared panels than as an out_in dense",
        ])
    }

    func testStridedPaddedGroupedAndNCHWConvsStayConvs() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 4, 4, 4])
        builder.layer("strided", .conv2d, parameters: [(.kernel, [1, 1, 4, 4])], ["strides": .ints([2, 2])])
        builder.layer("padded", .conv2d, parameters: [(.kernel, [1, 1, 4, 4])],
                      ["padding": .string("explicit"), "pads": .ints([1, 0, 0, 0])])
        builder.layer("grouped", .conv2d, parameters: [(.kernel, [1, 1, 2, 4])], ["groups": .int(2)])
        builder.layer("to_nchw", .transpose, ["perm": .ints([0, 3, 1, 2])])
        builder.layer("nchw", .conv2d, parameters: [(.kernel, [4, 4, 1, 1])],
                      ["layout": .string("nchw"), "kernel_layout": .string("oihw")])
        builder.layer("three", .conv2d, parameters: [(.kernel, [4, 4, 3, 3])],
                      ["layout": .string("nchw"), "kernel_layout": .string("oihw"), "padding": .string("same")])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [PointwiseConvolutionToDense()])
        XCTAssertEqual(result.graph.count(.conv2d), 5)
        XCTAssertEqual(result.explanations, [
            "pointwise-conv-to-dense: kept 'strided': its stride is not 1",
            "pointwise-conv-to-dense: kept 'padded': it pads its input",
            "pointwise-conv-to-dense: kept 'grouped': it has 2 groups",
            "pointwise-conv-to-dense: kept 'nchw': its layout is NCHW, so channels are not the last axis",
        ])
    }

    /// HWIO [1,1,8,16] is read as the in_out matrix [8,16]; bias and activation stay.
    func testGoldenPointwiseConvBecomesDenseOverTheLastAxis() throws {
        try assertRewrite(PointwiseConvolutionToDense(), """
            graph g
            input %x: f32[N,4,4,8] nhwc
            const @p/kernel: f32[1,1,8,16] kernel
            const @p/bias: f32[16] bias
            %p = conv2d(%x, @p/kernel, @p/bias) {activation="relu"} : f32[N,4,4,16]  # g.keel:3:1
            output y = %p
            """, """
            graph g
            input %x: f32[N,4,4,8] nhwc
            const @p/kernel: f32[8,16] kernel
            const @p/bias: f32[16] bias
            %p = dense(%x, @p/kernel, @p/bias) {activation="relu"} : f32[N,4,4,16]  # g.keel:3:1
            output y = %p

            """)
    }

}
