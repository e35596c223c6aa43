import KeelIR
import KeelPasses
import XCTest

final class PoolBeforePointwiseConvolutionTests: XCTestCase {
    /// 1×1 conv (with bias) → 2×2 average pool becomes pool → conv, on an odd size (both drop the
    /// last row and column), NHWC and NCHW, with the same numbers as the original graph.
    func testPoolMovesBeforeTheConvolution() throws {
        for layout in ["nhwc", "nchw"] {
            let shape: [Dim] = layout == "nhwc" ? ["N", 9, 7, 16] : ["N", 16, 9, 7]
            var builder = KerasGraphBuilder(name: "g", shape: Shape(shape), layout: layout == "nhwc" ? .nhwc : .nchw)
            let kernel: [Int] = layout == "nhwc" ? [1, 1, 16, 24] : [24, 16, 1, 1]
            builder.layer("conv", .conv2d, parameters: [(.kernel, Shape(known: kernel)), (.bias, [24])],
                          ["layout": .string(layout), "kernel_layout": .string(layout == "nhwc" ? "hwio" : "oihw")])
            builder.layer("pool", .avgPool2d, ["layout": .string(layout)])
            builder.layer("flatten", .flatten)
            builder.output("y")
            let graph = try prepared(builder)
            let result = try optimized(graph, [PoolBeforePointwiseConvolution()])
            XCTAssertEqual(result.graph.ops, [.avgPool2d, .conv2d, .flatten], layout)
            XCTAssertEqual(result.graph.valueTypes["pool/pooled"]?.shape,
                           layout == "nhwc" ? Shape(["N", 4, 3, 16]) : Shape(["N", 16, 4, 3]))
            XCTAssertEqual(result.graph.valueTypes["pool"]?.shape,
                           layout == "nhwc" ? Shape(["N", 4, 3, 24]) : Shape(["N", 24, 4, 3]))
            XCTAssertEqual(result.graph.outputs.map(\.value), graph.outputs.map(\.value))
            try assertEquivalent(graph, result.graph)
        }
    }

    func testNonLinearOrPaddedCasesAreKept() throws {
        let cases: [(conv: [String: AttributeValue], kernel: Int, pool: [String: AttributeValue], reason: String)] = [
            (["activation": .string("relu")], 1, [:], "'conv' applies an activation, residual or pool after its product"),
            ([:], 3, [:], "'conv' is not a 1x1 convolution with stride 1 and no padding"),
            (["strides": .ints([2, 2])], 1, [:], "'conv' is not a 1x1 convolution with stride 1 and no padding"),
            ([:], 1, ["padding": .string("same")], "it pads its input or rounds its output up"),
        ]
        for (convAttributes, size, poolAttributes, reason) in cases {
            // 7×7: a "same" 2×2 pool pads it (on 8×8 it would not).
            var builder = KerasGraphBuilder(name: "g", shape: ["N", 7, 7, 4])
            builder.layer("conv", .conv2d, parameters: [(.kernel, Shape(known: [size, size, 4, 4]))], convAttributes)
            builder.layer("pool", .avgPool2d, poolAttributes)
            builder.output("y")
            let graph = try prepared(builder)
            let result = try optimized(graph, [PoolBeforePointwiseConvolution()])
            XCTAssertEqual(result.graph, graph, reason)
            XCTAssertEqual(result.explanations, ["pool-before-pointwise-conv: kept 'pool': \(reason)"])
        }

        var builder = KerasGraphBuilder(name: "g", shape: ["N", 8, 8, 4])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [1, 1, 4, 4])])
        builder.layer("pool", .avgPool2d)
        builder.output("y")
        builder.output("features", value: "conv")
        let graph = try prepared(builder)
        let result = try optimized(graph, [PoolBeforePointwiseConvolution()])
        XCTAssertEqual(result.graph, graph)
        XCTAssertEqual(result.explanations, ["pool-before-pointwise-conv: kept 'pool': its input 'conv' is a graph output"])
    }
}
