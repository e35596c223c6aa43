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

    /// NASNet's reduction cells: one ZeroPadding2D read by two stride-2 separable convolutions
    /// (a depthwise and a full 7×7 here). Both take the pads and the copy goes; when one
    /// reader cannot (a max pool of a signed value), the Pad stays for all of them.
    func testZeroPadReadByTwoConvsFusesIntoBoth() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 11, 11, 4])
        builder.layer("pad", .pad, ["pads": .ints([0, 3, 3, 0, 0, 3, 3, 0])])
        builder.layer("left", .conv2d, parameters: [(.kernel, [7, 7, 1, 4])], inputs: ["pad"],
                      ["strides": .ints([2, 2]), "groups": .int(4)])
        builder.layer("right", .conv2d, parameters: [(.kernel, [7, 7, 4, 4])], inputs: ["pad"],
                      ["strides": .ints([2, 2])])
        builder.layer("sum", .add, inputs: ["left", "right"])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [PadFusion()])
        XCTAssertEqual(result.graph.ops, [.conv2d, .conv2d, .add])
        for name in ["left", "right"] {
            let conv = try XCTUnwrap(result.graph.node(named: name))
            XCTAssertEqual(conv.inputs.first, "input", name)
            XCTAssertEqual(conv.attributes["pads"], .ints([3, 3, 3, 3]), name)
            XCTAssertEqual(result.graph.valueTypes[name], graph.valueTypes[name], name)
        }
        try assertEquivalent(graph, result.graph)

        var mixed = KerasGraphBuilder(name: "g", shape: ["N", 11, 11, 4])
        mixed.layer("pad", .pad, ["pads": .ints([0, 1, 1, 0, 0, 1, 1, 0])])
        mixed.layer("conv", .conv2d, parameters: [(.kernel, [3, 3, 4, 4])], inputs: ["pad"], ["strides": .ints([2, 2])])
        mixed.layer("pool", .maxPool2d, inputs: ["pad"], ["pool_size": .ints([3, 3]), "strides": .ints([2, 2])])
        mixed.layer("sum", .add, inputs: ["conv", "pool"])
        mixed.output("y")
        let kept = try prepared(mixed)
        let unchanged = try optimized(kept, [PadFusion()])
        XCTAssertEqual(unchanged.graph, kept)
        XCTAssertEqual(unchanged.explanations, ["pad-fusion: kept 'pad': 'pool' pads with -infinity, and its input may be negative"])
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

    /// Keras ResNet50's and DenseNet121's stem: ReLU, ZeroPadding2D(1), MaxPooling2D(3, 2). The
    /// input is never negative, so the zeros lose to it wherever -infinity would.
    func testGoldenZeroPadBeforeMaxPoolOfAReLUFuses() throws {
        try assertRewrite(PadFusion(), """
            graph g
            input %x: f32[N,8,8,4] nhwc
            %r = relu(%x) : f32[N,8,8,4]
            %p = pad(%r) {pads=[0,1,1,0,0,1,1,0]} : f32[N,10,10,4]  # g.keel:3:1
            %m = max_pool2d(%p) {pool_size=[3,3], strides=[2,2]} : f32[N,4,4,4]  # g.keel:4:1
            output y = %m
            """, """
            graph g
            input %x: f32[N,8,8,4] nhwc
            %r = relu(%x) : f32[N,8,8,4]
            %m = max_pool2d(%r) {padding="explicit", pads=[1,1,1,1], pool_size=[3,3], strides=[2,2]} : f32[N,4,4,4]  # g.keel:4:1, g.keel:3:1
            output y = %m

            """)
    }

    /// An average pool counts the padded zeros in its divisor, as it did when they were data.
    func testGoldenZeroPadBeforeAveragePoolCountsThePadding() throws {
        try assertRewrite(PadFusion(), """
            graph g
            input %x: f32[N,4,5,5] nchw
            %p = pad(%x) {pads=[0,0,1,0,0,0,0,2]} : f32[N,4,6,7]
            %a = avg_pool2d(%p) {layout="nchw", pool_size=[3,3], strides=[1,1]} : f32[N,4,4,5]
            output y = %a
            """, """
            graph g
            input %x: f32[N,4,5,5] nchw
            %a = avg_pool2d(%x) {count_include_pad=1, layout="nchw", padding="explicit", pads=[1,0,0,2], pool_size=[3,3], strides=[1,1]} : f32[N,4,4,5]
            output y = %a

            """)
    }

    /// The same numbers before and after, for a max pool after a ReLU-activated conv and an
    /// average pool, in both layouts.
    func testPoolPadFusionKeepsTheNumbers() throws {
        for layout in ["nhwc", "nchw"] {
            let nhwc = layout == "nhwc"
            var builder = KerasGraphBuilder(name: "g", shape: Shape(nhwc ? ["N", 9, 8, 6] : ["N", 6, 9, 8]),
                                            layout: nhwc ? .nhwc : .nchw)
            builder.layer("conv", .conv2d, parameters: [(.kernel, Shape(known: nhwc ? [3, 3, 6, 5] : [5, 6, 3, 3])), (.bias, [5])],
                          ["layout": .string(layout), "kernel_layout": .string(nhwc ? "hwio" : "oihw"),
                           "activation": .string("relu")])
            builder.layer("pad", .pad, ["pads": .ints(nhwc ? [0, 1, 0, 0, 0, 1, 2, 0] : [0, 0, 1, 0, 0, 0, 1, 2])])
            builder.layer("max", .maxPool2d, ["layout": .string(layout), "pool_size": .ints([3, 3]), "strides": .ints([2, 2])])
            builder.layer("pad_2", .pad, ["pads": .ints(nhwc ? [0, 1, 1, 0, 0, 1, 1, 0] : [0, 0, 1, 1, 0, 0, 1, 1])])
            builder.layer("avg", .avgPool2d, ["layout": .string(layout), "pool_size": .ints([2, 2]), "strides": .ints([1, 1])])
            builder.output("y")
            let graph = try prepared(builder)
            let result = try optimized(graph, [PadFusion()])
            XCTAssertEqual(result.graph.ops, [.conv2d, .maxPool2d, .avgPool2d], layout)
            XCTAssertEqual(result.graph.node(named: "max")?.attributes["pads"], .ints([1, 0, 1, 2]), layout)
            XCTAssertEqual(result.graph.node(named: "avg")?.attributes["count_include_pad"], .int(1), layout)
            try assertEquivalent(graph, result.graph)
        }
    }

    /// Max pooling pads with -infinity: zeros around a value that may be negative would win.
    func testZeroPadBeforeMaxPoolOfASignedValueIsKept() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 6, 6, 3])
        builder.layer("pad", .pad, ["pads": .ints([0, 1, 1, 0, 0, 1, 1, 0])])
        builder.layer("pool", .maxPool2d, ["pool_size": .ints([3, 3]), "strides": .ints([2, 2])])
        builder.layer("relu", .relu)
        builder.layer("pad_2", .pad, ["pads": .ints([0, 3, 0, 0, 0, 0, 0, 0])])
        builder.layer("pool_2", .maxPool2d, ["pool_size": .ints([3, 3]), "strides": .ints([1, 1])])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [PadFusion()])
        XCTAssertEqual(result.graph, graph)
        XCTAssertEqual(result.explanations, ["pad-fusion: kept 'pad': 'pool' pads with -infinity, and its input may be negative",
                                             "pad-fusion: kept 'pad_2': a window of 'pool_2' would hold padding only"])
    }
}
