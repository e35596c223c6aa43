import KeelIR
import KeelPasses
import XCTest

final class PadFusionTests: XCTestCase {
    /// Keras's ZeroPadding2D(((0, 1), (1, 2))) + a valid stride-2 conv (odd and uneven, both
    /// layouts; a depthwise conv in NCHW) becomes one conv with those pads, with the same numbers.
    func testZeroPadBeforeConvFuses() throws {
        for layout in ["nhwc", "nchw"] {
            let nhwc = layout == "nhwc"
            var builder = KerasGraphBuilder(name: "g", shape: Shape(nhwc ? ["N", 9, 8, 6] : ["N", 6, 9, 8]),
                                            layout: nhwc ? .nhwc : .nchw)
            builder.layer("pad", .pad, ["pads": .ints(nhwc ? [0, 0, 1, 0, 0, 1, 2, 0] : [0, 0, 0, 1, 0, 0, 1, 2])])
            let kernel: [Int] = nhwc ? [3, 3, 6, 10] : [6, 1, 3, 3]
            builder.layer("conv", .conv2d, parameters: [(.kernel, Shape(known: kernel))],
                          ["strides": .ints([2, 2]), "layout": .string(layout), "groups": .int(nhwc ? 1 : 6),
                           "kernel_layout": .string(nhwc ? "hwio" : "oihw")])
            builder.output("y")
            let graph = try prepared(builder)
            let result = try optimized(graph, [PadFusion()])
            XCTAssertEqual(result.graph.ops, [.conv2d], layout)
            let conv = try XCTUnwrap(result.graph.node(named: "conv"))
            XCTAssertEqual(conv.inputs.first, "input")
            XCTAssertEqual(conv.attributes["pads"], .ints([0, 1, 1, 2]), layout)
            XCTAssertEqual(result.graph.valueTypes["conv"], graph.valueTypes["conv"], "same output type")
            try assertEquivalent(graph, result.graph)
        }
    }

    func testPadOfTheChannelsOrWithAValueIsKept() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 6, 6, 3])
        builder.layer("pad", .pad, ["pads": .ints([0, 1, 1, 0, 0, 1, 1, 1])])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [3, 3, 4, 5])])
        builder.layer("pad_one", .pad, ["pads": .ints([0, 1, 1, 0, 0, 1, 1, 0]), "value": .float(1)])
        builder.layer("conv_2", .conv2d, parameters: [(.kernel, [3, 3, 5, 5])])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [PadFusion()])
        XCTAssertEqual(result.graph, graph)
        XCTAssertEqual(result.explanations, ["pad-fusion: kept 'pad': it pads the batch or channel axis",
                                             "pad-fusion: kept 'pad_one': it pads with a value other than 0"])
    }
}
