import KeelIR
import KeelPasses
import XCTest

/// PyTorch's form of a network: an NCHW input read straight by NCHW layers, with no transposes.
final class ChannelsLastConversionTests: XCTestCase {
    private let nchw: [String: AttributeValue] = ["layout": .string("nchw"), "kernel_layout": .string("oihw")]

    /// The input gets the transpose pair in front of its readers; nothing else changes yet.
    func testGoldenNCHWInputGetsATransposePair() throws {
        try assertRewrite(ChannelsLastConversion(), """
            graph g
            input %x: f32[N,3,8,8] nchw
            const @c/kernel: f32[4,3,3,3] kernel
            %c = conv2d(%x, @c/kernel) {kernel_layout="oihw", layout="nchw", padding="same"} : f32[N,4,8,8]  # g.keel:3:1
            %r = relu(%c) : f32[N,4,8,8]
            output y = %r
            """, """
            graph g
            input %x: f32[N,3,8,8] nchw
            const @c/kernel: f32[4,3,3,3] kernel
            %x/to_nhwc = transpose(%x) {perm=[0,2,3,1]} : f32[N,8,8,3]  # g.keel:3:1
            %x/to_nchw = transpose(%x/to_nhwc) {perm=[0,3,1,2]} : f32[N,3,8,8]  # g.keel:3:1
            %c = conv2d(%x/to_nchw, @c/kernel) {kernel_layout="oihw", layout="nchw", padding="same"} : f32[N,4,8,8]  # g.keel:3:1
            %r = relu(%c) : f32[N,4,8,8]
            output y = %r

            """)
    }

    /// A torchvision-style network (conv, BN, ReLU, padded max pool, a residual add, global
    /// pool, flatten, dense) turns NHWC behind one transpose of the input, with the same numbers.
    func testTorchStyleNetworkRunsNHWCBehindOneTranspose() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 3, 12, 12], layout: .nchw)
        builder.layer("stem", .conv2d, parameters: [(.kernel, [8, 3, 3, 3]), (.bias, [8])],
                      nchw.merging(["strides": .ints([2, 2]), "padding": .string("explicit"), "pads": .ints([1, 1, 1, 1])]) { $1 })
        builder.layer("bn", .batchNorm, parameters: [(.gamma, [8]), (.beta, [8]), (.movingMean, [8]), (.movingVariance, [8])],
                      ["axis": .int(1), "epsilon": .float(1e-5)])
        builder.layer("relu", .relu)
        builder.layer("pool", .maxPool2d, ["layout": .string("nchw"), "pool_size": .ints([3, 3]), "strides": .ints([2, 2]),
                                           "padding": .string("explicit"), "pads": .ints([1, 1, 1, 1])])
        builder.layer("branch", .conv2d, parameters: [(.kernel, [8, 8, 1, 1])], nchw)
        builder.layer("sum", .add, inputs: ["branch", "pool"])
        builder.layer("gap", .globalAvgPool2d, ["layout": .string("nchw"), "keepdims": .bool(true)])
        builder.layer("flat", .flatten)
        builder.layer("fc", .dense, parameters: [(.kernel, [5, 8]), (.bias, [5])], ["weight_layout": .string("out_in")])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [ChannelsLastConversion(), LayoutPropagation(), TransposeCancellation()])
        XCTAssertEqual(result.graph.ops, [.transpose, .conv2d, .batchNorm, .relu, .maxPool2d, .conv2d, .add,
                                          .globalAvgPool2d, .flatten, .dense])
        XCTAssertEqual(result.graph.nodes.first?.attributes["perm"], .ints([0, 2, 3, 1]))
        XCTAssertEqual(result.graph.nodes.first?.inputs, ["input"])
        for node in result.graph.nodes { XCTAssertNotEqual(node.attributes["layout"], .string("nchw"), node.name) }
        XCTAssertEqual(result.log.first, "channels-last-conversion: 1 NCHW inputs offered as NHWC, 0 nodes removed, 0 weight bytes changed")
        try assertEquivalent(graph, result.graph)
    }

    /// A backbone exported for its features: the NCHW feature map is the graph output. The
    /// network still runs NHWC, and one transpose at the end gives the output its NCHW form
    /// under its own name.
    func testFeatureMapOutputRunsNHWCAndIsTransposedBack() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 3, 9, 7], layout: .nchw)
        builder.layer("conv", .conv2d, parameters: [(.kernel, [5, 3, 3, 3]), (.bias, [5])],
                      nchw.merging(["strides": .ints([2, 2]), "padding": .string("explicit"), "pads": .ints([1, 1, 1, 1])]) { $1 })
        builder.layer("relu", .relu)
        builder.layer("depthwise", .conv2d, parameters: [(.kernel, [5, 1, 3, 3])],
                      nchw.merging(["groups": .int(5), "padding": .string("same")]) { $1 })
        builder.output("features")
        builder.output("stem", value: "relu")
        let graph = try prepared(builder)
        let result = try optimized(graph, [ChannelsLastConversion(), LayoutPropagation(), TransposeCancellation()])
        XCTAssertEqual(result.graph.ops, [.transpose, .conv2d, .relu, .conv2d, .transpose, .transpose])
        for node in result.graph.nodes { XCTAssertNotEqual(node.attributes["layout"], .string("nchw"), node.name) }
        XCTAssertEqual(result.graph.outputs.map(\.value), ["depthwise", "relu"])
        for output in result.graph.outputs {
            let producer = try XCTUnwrap(result.graph.nodes.first { $0.outputs == [output.value] })
            XCTAssertEqual(producer.op, .transpose, output.name)
            XCTAssertEqual(producer.attributes["perm"], .ints([0, 3, 1, 2]), output.name)
        }
        XCTAssertEqual(result.graph.valueTypes["depthwise"]?.shape, ["N", 5, 5, 4])
        try assertEquivalent(graph, result.graph)
    }

    /// When layout-propagation keeps the region NCHW (here a reshape of the map has no NHWC
    /// form), the pair composes to the identity and transpose-cancellation leaves the graph as
    /// it was.
    func testPairVanishesWhenTheRegionStaysNCHW() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 3, 6, 6], layout: .nchw)
        builder.layer("conv", .conv2d, parameters: [(.kernel, [4, 3, 3, 3])], nchw)
        builder.layer("tokens", .reshape, ["shape": .ints([0, 4, 16])])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [ChannelsLastConversion(), LayoutPropagation(), TransposeCancellation()])
        XCTAssertEqual(result.graph, graph)
        XCTAssertEqual(result.explanations.count, 1)
        XCTAssertTrue(result.explanations.first?.hasPrefix("layout-propagation: kept 'input/to_nchw': NCHW value 'conv' feeds reshape 'tokens'") ?? false,
                      "\(result.explanations)")
    }

    func testInputsWithoutNCHWConvolutionsAreLeftAlone() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 3, 6, 6], layout: .nchw)
        builder.layer("act", .relu)
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [ChannelsLastConversion()])
        XCTAssertEqual(result.graph, graph)
        XCTAssertEqual(result.explanations, ["channels-last-conversion: kept 'input': no NCHW convolution or pool reads it"])
    }
}
