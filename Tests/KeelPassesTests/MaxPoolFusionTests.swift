import KeelIR
import KeelPasses
import XCTest

final class MaxPoolFusionTests: XCTestCase {
    /// conv → ReLU → 2×2 pool becomes one conv that pools, on an odd size (the last row and
    /// column are dropped by both), NHWC and NCHW, with the same numbers as the unfused graph.
    func testConvReluPoolFuses() throws {
        for layout in ["nhwc", "nchw"] {
            let shape: [Dim] = layout == "nhwc" ? ["N", 9, 7, 16] : ["N", 16, 9, 7]
            var builder = KerasGraphBuilder(name: "g", shape: Shape(shape), layout: layout == "nhwc" ? .nhwc : .nchw)
            let kernel: [Int] = layout == "nhwc" ? [3, 3, 16, 24] : [24, 16, 3, 3]
            builder.layer("conv", .conv2d, parameters: [(.kernel, Shape(known: kernel)), (.bias, [24])],
                          ["padding": .string("same"), "activation": .string("relu"), "layout": .string(layout),
                           "kernel_layout": .string(layout == "nhwc" ? "hwio" : "oihw")])
            builder.layer("pool", .maxPool2d, ["layout": .string(layout)])
            builder.layer("flatten", .flatten)
            builder.output("y")
            let graph = try prepared(builder)
            let result = try optimized(graph, [MaxPoolFusion()])
            XCTAssertEqual(result.graph.ops, [.conv2d, .flatten], layout)
            let conv = try XCTUnwrap(result.graph.node(named: "conv"))
            XCTAssertEqual(conv.attributes["pool"], .string("max2x2"))
            XCTAssertEqual(result.graph.valueTypes["conv"]?.shape,
                           layout == "nhwc" ? Shape(["N", 4, 3, 24]) : Shape(["N", 24, 4, 3]))
            XCTAssertEqual(conv.locations.count, 2, "the pool's location is kept")
            try assertEquivalent(graph, result.graph)
        }
    }

    func testPoolThatIsAGraphOutputKeepsItsName() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 8, 8, 16])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [3, 3, 16, 16])], ["padding": .string("same")])
        builder.layer("pool", .maxPool2d)
        builder.output("features")
        let graph = try prepared(builder)
        let result = try optimized(graph, [MaxPoolFusion()])
        XCTAssertEqual(result.graph.ops, [.conv2d])
        XCTAssertEqual(result.graph.outputs.map(\.value), graph.outputs.map(\.value))
        try assertEquivalent(graph, result.graph)
    }

    func testOtherPoolsAndSharedOutputsAreKept() throws {
        let cases: [(attributes: [String: AttributeValue], reason: String)] = [
            (["pool_size": .ints([3, 3]), "strides": .ints([2, 2])], "only 2x2 windows with stride 2 fuse, not 3x3 with stride 2x2"),
            (["strides": .ints([1, 1])], "only 2x2 windows with stride 2 fuse, not 2x2 with stride 1x1"),
            (["padding": .string("same")], "it pads its input or rounds its output up"),
        ]
        for (attributes, reason) in cases {
            var builder = KerasGraphBuilder(name: "g", shape: ["N", 7, 7, 4])
            builder.layer("conv", .conv2d, parameters: [(.kernel, [3, 3, 4, 4])], ["padding": .string("same")])
            builder.layer("pool", .maxPool2d, attributes)
            builder.output("y")
            let graph = try prepared(builder)
            let result = try optimized(graph, [MaxPoolFusion()])
            XCTAssertEqual(result.graph, graph, reason)
            XCTAssertEqual(result.explanations, ["max-pool-fusion: kept 'pool': \(reason)"])
        }

        var builder = KerasGraphBuilder(name: "g", shape: ["N", 8, 8, 4])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [3, 3, 4, 4])], ["padding": .string("same")])
        builder.layer("pool", .maxPool2d)
        builder.output("y")
        builder.output("features", value: "conv")
        let graph = try prepared(builder)
        let result = try optimized(graph, [MaxPoolFusion()])
        XCTAssertEqual(result.graph, graph)
        XCTAssertEqual(result.explanations, ["max-pool-fusion: kept 'pool': its input 'conv' is a graph output"])
    }

    /// The fused op's shape check: a conv whose output is under 2×2 cannot pool.
    func testPoolOnATinyOutputIsRefusedByShapeInference() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 3, 3, 4])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [3, 3, 4, 4])], ["pool": .string("max2x2")])
        builder.output("y")
        XCTAssertThrowsError(try ShapeInference().run(builder.graph)) { error in
            XCTAssertTrue("\(error)".contains("fuses a 2×2 max pool but its output is only 1×1"), "\(error)")
        }
    }

    func testGoldenPoolAfterConvBecomesItsPoolAttribute() throws {
        try assertRewrite(MaxPoolFusion(), """
            graph g
            input %x: f32[N,8,8,3] nhwc
            const @c/kernel: f32[3,3,3,4] kernel
            %c = conv2d(%x, @c/kernel) {activation="relu", padding="same"} : f32[N,8,8,4]  # g.keel:3:1
            %p = max_pool2d(%c) {pool_size=[2,2]} : f32[N,4,4,4]  # g.keel:4:1
            %r = sigmoid(%p) : f32[N,4,4,4]  # g.keel:5:1
            output y = %r
            """, """
            graph g
            input %x: f32[N,8,8,3] nhwc
            const @c/kernel: f32[3,3,3,4] kernel
            %c = conv2d(%x, @c/kernel) {activation="relu", padding="same", pool="max2x2"} : f32[N,4,4,4]  # g.keel:3:1, g.keel:4:1
            %r = sigmoid(%c) : f32[N,4,4,4]  # g.keel:5:1
            output y = %r

            """)
    }

}
