import KeelIR
import KeelPasses
import XCTest

/// Graphs in the form tf2onnx gives a Keras model: NHWC input, a transpose to NCHW, NCHW
/// layers with OIHW kernels, and a transpose back (or a flatten into a dense).
final class LayoutPropagationTests: XCTestCase {
    private let nchw: [String: AttributeValue] = ["layout": .string("nchw"), "kernel_layout": .string("oihw")]

    private func sandwich() -> KerasGraphBuilder {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 8, 8, 3])
        builder.layer("to_nchw", .transpose, ["perm": .ints([0, 3, 1, 2])])
        builder.layer("conv1", .conv2d, parameters: [(.kernel, [8, 3, 3, 3]), (.bias, [8])],
                      nchw.merging(["padding": .string("same")]) { $1 })
        builder.layer("bn1", .batchNorm, parameters: [(.gamma, [8]), (.beta, [8]), (.movingMean, [8]), (.movingVariance, [8])],
                      ["axis": .int(1), "epsilon": .float(1e-5)])
        builder.layer("relu1", .relu)
        builder.layer("pool1", .maxPool2d, ["layout": .string("nchw")])
        builder.layer("conv2", .conv2d, parameters: [(.kernel, [6, 8, 1, 1])], nchw)
        builder.literal("shift", [6, 1, 1])
        builder.layer("shifted", .add, inputs: ["conv2", "shift"])
        builder.literal("half", [1])
        builder.layer("scaled", .mul, inputs: ["half", "shifted"])
        return builder
    }

    func testSandwichedNCHWRegionBecomesNHWCAndTransposesVanish() throws {
        var builder = sandwich()
        builder.layer("to_nhwc", .transpose, ["perm": .ints([0, 2, 3, 1])])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [LayoutPropagation()])
        XCTAssertEqual(result.graph.count(.transpose), 0)
        XCTAssertEqual(result.graph.ops, [.conv2d, .batchNorm, .relu, .maxPool2d, .conv2d, .add, .mul])
        for node in result.graph.nodes { XCTAssertNil(node.attributes["layout"], "\(node.name) is NHWC (the default)") }
        XCTAssertEqual(result.graph.node(named: "bn1")?.attributes["axis"], nil)
        XCTAssertEqual(result.graph.node(named: "shifted")?.inputs, ["conv2", "shift"])
        XCTAssertEqual(result.graph.constants["shift"]?.type.shape, [1, 1, 1, 6])
        XCTAssertEqual(result.graph.valueTypes["to_nhwc"], TensorType(.float32, ["N", 4, 4, 6]))
        XCTAssertEqual(result.graph.outputs.first?.value, "to_nhwc", "the output value keeps its name")
        XCTAssertEqual(result.log, ["layout-propagation: 1 regions turned NHWC, 2 nodes removed, 0 weight bytes changed"])
        try assertEquivalent(graph, result.graph)
    }

    /// The region ends in a Flatten before a dense: the dense kernel's rows are permuted from
    /// C·H·W to H·W·C order so the logits do not change.
    func testFlattenExitPermutesDenseRows() throws {
        for (flatten, layout) in [(OpKind.flatten, "in_out"), (.reshape, "out_in")] {
            var builder = sandwich()
            builder.layer("flat", flatten, flatten == .reshape ? ["shape": .ints([0, -1])] : [:])
            let kernel: Shape = layout == "in_out" ? [96, 5] : [5, 96]
            builder.layer("logits", .dense, parameters: [(.kernel, kernel), (.bias, [5])], ["weight_layout": .string(layout)])
            builder.output("y")
            let graph = try prepared(builder)
            let result = try optimized(graph, [LayoutPropagation()])
            XCTAssertEqual(result.graph.count(.transpose), 0, "\(flatten)")
            XCTAssertEqual(result.log, ["layout-propagation: 1 regions turned NHWC, 1 nodes removed, 1,920 weight bytes changed"])
            try assertEquivalent(graph, result.graph)
        }
    }

    /// tf2onnx transposes a value once per reader; both entries of a residual add vanish.
    func testRegionWithTwoEntryTransposes() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 5, 5, 4])
        builder.layer("a", .transpose, ["perm": .ints([0, 3, 1, 2])])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [4, 4, 3, 3])], nchw.merging(["padding": .string("same")]) { $1 })
        builder.layer("b", .transpose, inputs: ["input"], ["perm": .ints([0, 3, 1, 2])])
        builder.layer("sum", .add, inputs: ["conv", "b"])
        builder.layer("gap", .globalAvgPool2d, ["layout": .string("nchw")])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [LayoutPropagation()])
        XCTAssertEqual(result.graph.ops, [.conv2d, .add, .globalAvgPool2d])
        try assertEquivalent(graph, result.graph)
    }

    /// ResNet's stem: conv, ReLU, then a zero pad before the max pool; the pad's amounts move
    /// with the axes (uneven ones show a wrong permutation).
    func testPadInsideTheRegionHasItsAmountsPermuted() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 6, 5, 3])
        builder.layer("to_nchw", .transpose, ["perm": .ints([0, 3, 1, 2])])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [4, 3, 3, 3]), (.bias, [4])],
                      nchw.merging(["padding": .string("same")]) { $1 })
        builder.layer("relu", .relu)
        builder.layer("pad", .pad, ["pads": .ints([0, 0, 1, 2, 0, 0, 2, 1])])
        builder.layer("pool", .maxPool2d, ["layout": .string("nchw")])
        builder.layer("to_nhwc", .transpose, ["perm": .ints([0, 2, 3, 1])])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [LayoutPropagation()])
        XCTAssertEqual(result.graph.ops, [.conv2d, .relu, .pad, .maxPool2d])
        XCTAssertEqual(result.graph.node(named: "pad")?.attributes["pads"], .ints([0, 1, 2, 0, 0, 2, 1, 0]))
        try assertEquivalent(graph, result.graph)
    }

    /// A channel split (the dynamo exporter's ShuffleNet units) splits NHWC's last axis instead,
    /// and both pieces stay in the region.
    func testChannelSplitJoinsTheRegionWithBothPieces() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 5, 4, 3])
        builder.layer("to_nchw", .transpose, ["perm": .ints([0, 3, 1, 2])])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [8, 3, 1, 1])], nchw)
        builder.graph.nodes.append(Node(name: "split", op: .split, inputs: ["conv"], outputs: ["piece", "rest"],
                                        attributes: Attributes(["axis": .int(1), "sizes": .ints([3, 5])])))
        builder.layer("branch", .conv2d, parameters: [(.kernel, [4, 3, 3, 3])], inputs: ["piece"],
                      nchw.merging(["padding": .string("same")]) { $1 })
        builder.layer("relu", .relu, inputs: ["rest"])
        builder.layer("joined", .concat, inputs: ["branch", "relu"], ["axis": .int(1)])
        builder.layer("to_nhwc", .transpose, ["perm": .ints([0, 2, 3, 1])])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [LayoutPropagation()])
        XCTAssertEqual(result.graph.count(.transpose), 0, "\(result.explanations)")
        XCTAssertEqual(result.graph.node(named: "split")?.attributes["axis"], .int(3))
        XCTAssertEqual(result.graph.valueTypes["rest"], TensorType(.float32, ["N", 5, 4, 5]))
        try assertEquivalent(graph, result.graph)
    }

    /// Convolutions between ops without an NHWC form (MaxViT's MBConv between its attention's
    /// reshapes): the region starts behind an inserted transpose to NHWC and leaves through one
    /// back to NCHW in front of the reshape, since it has more convolutions than transposes.
    func testConvolutionsBetweenReshapesRunNHWCBehindTransposes() throws {
        var builder = KerasGraphBuilder(name: "g", input: "tokens", shape: ["N", 36, 4], layout: nil)
        builder.layer("map", .reshape, ["shape": .ints([0, 4, 6, 6])])
        builder.layer("expand", .conv2d, parameters: [(.kernel, [8, 4, 1, 1]), (.bias, [8])], nchw)
        builder.layer("depthwise", .conv2d, parameters: [(.kernel, [8, 1, 3, 3])],
                      nchw.merging(["padding": .string("same"), "groups": .int(8)]) { $1 })
        builder.layer("project", .conv2d, parameters: [(.kernel, [4, 8, 1, 1])], nchw)
        builder.layer("sum", .add, inputs: ["project", "map"])
        builder.layer("back", .reshape, ["shape": .ints([0, 4, 36])])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [LayoutPropagation()])
        XCTAssertFalse(result.graph.nodes.contains { $0.attributes["layout"] == .string("nchw") }, "\(result.explanations)")
        XCTAssertEqual(result.graph.ops, [.reshape, .transpose, .conv2d, .conv2d, .conv2d, .add, .transpose, .reshape])
        let transposes = result.graph.nodes.filter { $0.op == .transpose }.map { $0.attributes["perm"] }
        XCTAssertEqual(transposes, [.ints([0, 2, 3, 1]), .ints([0, 3, 1, 2])])
        try assertEquivalent(graph, result.graph)
    }

    /// One convolution is not worth a transpose in and one out: it stays NCHW.
    func testALoneConvolutionBetweenReshapesStaysNCHW() throws {
        var builder = KerasGraphBuilder(name: "g", input: "tokens", shape: ["N", 36, 4], layout: nil)
        builder.layer("map", .reshape, ["shape": .ints([0, 4, 6, 6])])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [4, 4, 3, 3])], nchw.merging(["padding": .string("same")]) { $1 })
        builder.layer("back", .reshape, ["shape": .ints([0, 4, 36])])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [LayoutPropagation()])
        XCTAssertEqual(result.graph, graph)
    }

    func testRegionReadByAnOpWithoutNHWCFormIsKept() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 4, 4, 3])
        builder.layer("to_nchw", .transpose, ["perm": .ints([0, 3, 1, 2])])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [2, 3, 1, 1])], nchw)
        builder.layer("softmax", .softmax, ["axis": .int(1)])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [LayoutPropagation()])
        XCTAssertEqual(result.graph, graph)
        XCTAssertEqual(result.explanations, ["layout-propagation: kept 'to_nchw': NCHW value 'conv' feeds softmax 'softmax', which has no NHWC form here"])
    }

    /// A residual block: the add reads the block input and the conv branch, reached in either order.
    func testResidualBranchInsideTheRegion() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 5, 5, 4])
        builder.layer("to_nchw", .transpose, ["perm": .ints([0, 3, 1, 2])])
        builder.layer("stem", .conv2d, parameters: [(.kernel, [4, 4, 3, 3])], nchw.merging(["padding": .string("same")]) { $1 })
        builder.layer("branch", .conv2d, parameters: [(.kernel, [4, 4, 3, 3])], nchw.merging(["padding": .string("same")]) { $1 })
        builder.layer("branch_relu", .relu)
        builder.layer("sum", .add, inputs: ["stem", "branch_relu"])
        builder.literal("offset", [1])
        builder.layer("shifted", .sub, inputs: ["offset", "sum"])
        builder.layer("to_nhwc", .transpose, ["perm": .ints([0, 2, 3, 1])])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [LayoutPropagation()])
        XCTAssertEqual(result.graph.ops, [.conv2d, .conv2d, .relu, .add, .sub])
        try assertEquivalent(graph, result.graph)
    }

    /// ConvNeXt's block as PyTorch exports it: NCHW depthwise conv, transpose to NHWC for the
    /// dense layers, transpose back, layer-scale mul, residual add. The add's second operand
    /// comes from a further entry transpose behind the mul, which joins the region.
    func testEntryBehindALayerScaleJoinsTheRegion() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 5, 5, 4])
        builder.layer("to_nchw", .transpose, ["perm": .ints([0, 3, 1, 2])])
        builder.layer("depthwise", .conv2d, parameters: [(.kernel, [4, 1, 3, 3]), (.bias, [4])],
                      nchw.merging(["padding": .string("same"), "groups": .int(4)]) { $1 })
        builder.layer("branch_nhwc", .transpose, ["perm": .ints([0, 2, 3, 1])])
        builder.layer("dense", .dense, parameters: [(.kernel, [4, 4]), (.bias, [4])])
        builder.layer("branch_nchw", .transpose, ["perm": .ints([0, 3, 1, 2])])
        builder.literal("gamma", [4, 1, 1])
        builder.layer("scaled", .mul, inputs: ["gamma", "branch_nchw"])
        builder.layer("sum", .add, inputs: ["scaled", "to_nchw"])
        builder.layer("to_nhwc", .transpose, ["perm": .ints([0, 2, 3, 1])])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [LayoutPropagation()])
        XCTAssertEqual(result.graph.ops, [.conv2d, .dense, .mul, .add])
        XCTAssertEqual(result.graph.constants["gamma"]?.type.shape, [1, 1, 1, 4])
        XCTAssertEqual(result.log, ["layout-propagation: 1 regions turned NHWC, 4 nodes removed, 0 weight bytes changed"])
        try assertEquivalent(graph, result.graph)
    }

    /// ConvFormer's block: the pre-norm transposes around a dense (its LayerNorm), then six ops
    /// to the residual add (1×1 conv, StarReLU's square, scale and shift, depthwise, 1×1 conv). The
    /// entry transpose that far behind the add still joins the region: every layer runs NHWC.
    func testEntrySixOpsBehindAResidualAddJoinsTheRegion() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 6, 6, 4])
        builder.layer("to_nchw", .transpose, ["perm": .ints([0, 3, 1, 2])])
        builder.layer("stem", .conv2d, parameters: [(.kernel, [4, 4, 1, 1])], nchw)
        builder.layer("norm_nhwc", .transpose, ["perm": .ints([0, 2, 3, 1])])
        builder.layer("norm", .dense, parameters: [(.kernel, [4, 4])])
        builder.layer("norm_nchw", .transpose, ["perm": .ints([0, 3, 1, 2])])
        builder.layer("expand", .conv2d, parameters: [(.kernel, [8, 4, 1, 1])], nchw)
        builder.layer("squared", .mul, inputs: ["expand", "expand"])
        builder.literal("scale", [1])
        builder.layer("scaled", .mul, inputs: ["scale", "squared"])
        builder.literal("shift", [1])
        builder.layer("shifted", .add, inputs: ["scaled", "shift"])
        builder.layer("depthwise", .conv2d, parameters: [(.kernel, [8, 1, 3, 3])],
                      nchw.merging(["padding": .string("same"), "groups": .int(8)]) { $1 })
        builder.layer("project", .conv2d, parameters: [(.kernel, [4, 8, 1, 1])], nchw)
        builder.layer("sum", .add, inputs: ["project", "stem"])
        builder.layer("to_nhwc", .transpose, ["perm": .ints([0, 2, 3, 1])])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [LayoutPropagation()])
        XCTAssertEqual(result.graph.count(.transpose), 0, result.explanations.joined(separator: "\n"))
        XCTAssertTrue(result.graph.nodes.filter { $0.op == .conv2d }.allSatisfy { (try? $0.attributeReader.string("layout")) == "nhwc" }, printIR(result.graph))
        try assertEquivalent(graph, result.graph)
    }

    /// EfficientViT's context module: a residual add reads the region's last convolution and the
    /// output of ops without an NHWC form (its attention's reshapes). The add stays NCHW behind a
    /// transpose back, shared with those ops; the convolutions before it still run NHWC.
    func testAddMixingTheRegionWithAnOutsideValueReadsItThroughATransposeBack() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 5, 5, 4])
        builder.layer("to_nchw", .transpose, ["perm": .ints([0, 3, 1, 2])])
        builder.layer("conv1", .conv2d, parameters: [(.kernel, [4, 4, 3, 3])], nchw.merging(["padding": .string("same")]) { $1 })
        builder.layer("conv2", .conv2d, parameters: [(.kernel, [4, 4, 1, 1])], nchw)
        builder.layer("conv3", .conv2d, parameters: [(.kernel, [4, 4, 3, 3])], nchw.merging(["padding": .string("same")]) { $1 })
        builder.layer("tokens", .reshape, ["shape": .ints([0, 4, 25])])
        builder.layer("mixed", .softmax, ["axis": .int(-1)])
        builder.layer("map", .reshape, ["shape": .ints([0, 4, 5, 5])])
        builder.layer("sum", .add, inputs: ["conv3", "map"])
        builder.layer("to_nhwc", .transpose, ["perm": .ints([0, 2, 3, 1])])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [LayoutPropagation()])
        XCTAssertTrue(result.graph.nodes.filter { $0.op == .conv2d }.allSatisfy { (try? $0.attributeReader.string("layout")) == "nhwc" },
                      printIR(result.graph))
        XCTAssertEqual(result.graph.count(.transpose), 2, printIR(result.graph))
        try assertEquivalent(graph, result.graph)
    }

    /// PoolFormer's GroupNorm(1): reshape to [N, 1, C·H·W], instance norm, reshape back, then the
    /// per-channel affine. Normalising an image over all its values does not depend on their
    /// order, so the region runs through it in NHWC: the last reshape's target becomes [0, H, W, C].
    func testWholeImageNormalizationJoinsTheRegion() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 5, 6, 4])
        builder.layer("to_nchw", .transpose, ["perm": .ints([0, 3, 1, 2])])
        builder.layer("conv1", .conv2d, parameters: [(.kernel, [4, 4, 3, 3])], nchw.merging(["padding": .string("same")]) { $1 })
        builder.layer("flat", .reshape, ["shape": .ints([0, 1, -1])])
        builder.literal("one", [1])
        builder.literal("zero", [1])
        builder.layer("norm", .instanceNorm, inputs: ["flat", "one", "zero"], ["axis": .int(1), "epsilon": .float(1e-5)])
        builder.layer("image", .reshape, ["shape": .ints([0, 4, 5, 6])])
        builder.literal("gamma", [4, 1, 1])
        builder.layer("scaled", .mul, inputs: ["image", "gamma"])
        builder.layer("conv2", .conv2d, parameters: [(.kernel, [4, 4, 1, 1])], nchw)
        builder.layer("to_nhwc", .transpose, ["perm": .ints([0, 2, 3, 1])])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [LayoutPropagation()])
        XCTAssertEqual(result.graph.count(.transpose), 0, result.explanations.joined(separator: "\n"))
        XCTAssertEqual(result.graph.nodes.first { $0.name == "image" }?.attributes.ints("shape"), [0, 5, 6, 4])
        try assertEquivalent(graph, result.graph)
    }

    func testRegionMixingWithAnUntransposedValueIsKept() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 4, 4, 4])
        builder.layer("to_nchw", .transpose, ["perm": .ints([0, 3, 1, 2])])
        builder.layer("sum", .add, inputs: ["to_nchw", "input"])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [LayoutPropagation()])
        XCTAssertEqual(result.graph, graph)
        XCTAssertEqual(result.explanations, ["layout-propagation: kept 'to_nchw': add 'sum' also reads 'input', which is not NCHW from a transpose"])
    }

    /// ONNX's classifier tail: GlobalAveragePool (keepdims) then Squeeze or Flatten, any reader.
    func testGlobalPoolTailEndsTheRegion() throws {
        for tail in [OpKind.squeeze, .flatten, .reshape] {
            var builder = KerasGraphBuilder(name: "g", shape: ["N", 6, 6, 3])
            builder.layer("to_nchw", .transpose, ["perm": .ints([0, 3, 1, 2])])
            builder.layer("conv", .conv2d, parameters: [(.kernel, [5, 3, 3, 3])], nchw)
            builder.layer("gap", .globalAvgPool2d, ["layout": .string("nchw"), "keepdims": .bool(true)])
            let attributes: [String: AttributeValue] = tail == .squeeze ? ["axes": .ints([2, 3])]
                : tail == .reshape ? ["shape": .ints([-1, 5])] : [:]
            builder.layer("tail", tail, attributes)
            builder.layer("softmax", .softmax)
            builder.output("y")
            let graph = try prepared(builder)
            let result = try optimized(graph, [LayoutPropagation()])
            XCTAssertEqual(result.graph.count(.transpose), 0, "\(tail)")
            if tail == .squeeze { XCTAssertEqual(result.graph.node(named: "tail")?.attributes["axes"], .ints([1, 2])) }
            try assertEquivalent(graph, result.graph)
        }
    }

    /// tf2onnx's squeeze-excitation: the pooled channels leave the region through Squeeze and
    /// Reshape to [N,C,1,1], go through NCHW 1×1 convs and a sigmoid, and scale the region's
    /// activation. The gate joins the region through a reshape to [N,1,1,C] (the same bytes).
    func testSqueezeExcitationGateJoinsTheRegionThroughAReshape() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 5, 5, 8])
        builder.layer("to_nchw", .transpose, ["perm": .ints([0, 3, 1, 2])])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [8, 8, 3, 3])], nchw.merging(["padding": .string("same")]) { $1 })
        builder.layer("gap", .globalAvgPool2d, ["layout": .string("nchw"), "keepdims": .bool(true)])
        builder.layer("squeeze", .squeeze, ["axes": .ints([2, 3])])
        builder.layer("unsqueeze", .reshape, ["shape": .ints([-1, 8, 1, 1])])
        builder.layer("reduce", .conv2d, parameters: [(.kernel, [2, 8, 1, 1]), (.bias, [2])], nchw)
        builder.layer("expand", .conv2d, parameters: [(.kernel, [8, 2, 1, 1]), (.bias, [8])], nchw)
        builder.layer("gate", .sigmoid)
        builder.layer("excite", .mul, inputs: ["conv", "gate"])
        builder.layer("to_nhwc", .transpose, ["perm": .ints([0, 2, 3, 1])])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [LayoutPropagation()])
        XCTAssertEqual(result.graph.count(.transpose), 0)
        XCTAssertEqual(result.graph.node(named: "conv")?.attributes["layout"], nil, "the main path is NHWC")
        XCTAssertEqual(result.graph.node(named: "reduce")?.attributes["layout"], .string("nchw"), "the gate's convs stay")
        XCTAssertEqual(result.graph.node(named: "excite")?.inputs, ["conv", "gate/nhwc"])
        XCTAssertEqual(result.graph.valueTypes["gate/nhwc"], TensorType(.float32, ["N", 1, 1, 8]))
        XCTAssertEqual(result.log, ["layout-propagation: 1 regions turned NHWC, 2 nodes removed, 0 weight bytes changed"])
        try assertEquivalent(graph, result.graph)
    }

    /// PyTorch's squeeze-excitation pools with a mean over H and W: it becomes a global average
    /// pool (keeping its dims) and the whole block runs NHWC.
    func testMeanOverHeightAndWidthBecomesGlobalPool() throws {
        for keepDims in [true, false] {
            var builder = KerasGraphBuilder(name: "g", shape: ["N", 4, 6, 8])
            builder.layer("to_nchw", .transpose, ["perm": .ints([0, 3, 1, 2])])
            builder.layer("conv", .conv2d, parameters: [(.kernel, [8, 8, 3, 3])], nchw.merging(["padding": .string("same")]) { $1 })
            builder.layer("mean", .reduceMean, ["axes": .ints([-1, 2]), "keepdims": .bool(keepDims)])
            if keepDims {
                builder.layer("expand", .conv2d, parameters: [(.kernel, [8, 8, 1, 1]), (.bias, [8])], nchw)
                builder.layer("gate", .sigmoid)
                builder.layer("excite", .mul, inputs: ["gate", "conv"])
                builder.layer("to_nhwc", .transpose, ["perm": .ints([0, 2, 3, 1])])
            } else {
                builder.layer("softmax", .softmax)
            }
            builder.output("y")
            let graph = try prepared(builder)
            let result = try optimized(graph, [LayoutPropagation()])
            XCTAssertEqual(result.graph.count(.transpose), 0, "keepdims \(keepDims)")
            XCTAssertEqual(result.graph.node(named: "mean")?.op, .globalAvgPool2d)
            XCTAssertEqual(result.graph.node(named: "mean")?.attributes["keepdims"], keepDims ? .bool(true) : nil)
            try assertEquivalent(graph, result.graph)
        }
    }

    /// A mean over other axes has no NHWC form here.
    func testMeanOverChannelsKeepsTheRegion() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 4, 4, 3])
        builder.layer("to_nchw", .transpose, ["perm": .ints([0, 3, 1, 2])])
        builder.layer("mean", .reduceMean, ["axes": .ints([1])])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [LayoutPropagation()])
        XCTAssertEqual(result.graph, graph)
    }

    /// tf2onnx's sandwich: NHWC input, transpose to NCHW, NCHW conv and relu, transpose back. Both
    /// transposes vanish, the conv takes the default layout (NHWC) and the relu the exit's value
    /// name, so the graph output still reads `%u`.
    func testGoldenSandwichBecomesNHWC() throws {
        try assertRewrite(LayoutPropagation(), """
            graph g
            input %x: f32[N,8,8,3] nhwc
            const @c/kernel: f32[4,3,3,3] kernel
            %t = transpose(%x) {perm=[0,3,1,2]} : f32[N,3,8,8]
            %c = conv2d(%t, @c/kernel) {kernel_layout="oihw", layout="nchw", padding="same"} : f32[N,4,8,8]
            %r = relu(%c) : f32[N,4,8,8]
            %u = transpose(%r) {perm=[0,2,3,1]} : f32[N,8,8,4]
            output y = %u
            """, """
            graph g
            input %x: f32[N,8,8,3] nhwc
            const @c/kernel: f32[4,3,3,3] kernel
            %c = conv2d(%x, @c/kernel) {kernel_layout="oihw", padding="same"} : f32[N,8,8,4]
            %u = relu(%c) : f32[N,8,8,4]
            output y = %u

            """)
    }

    /// A squeeze-excitation gate computed outside the region ([N,C,1,1] from a reshape) reaches
    /// the scaling mul through a reshape to [N,1,1,C]; a mean over H and W becomes a global pool.
    func testGoldenSqueezeExcitationRunsNHWC() throws {
        try assertRewrite(LayoutPropagation(), """
            graph g
            input %x: f32[N,4,4,8] nhwc
            input %s: f32[N,8] nhwc
            %t = transpose(%x) {perm=[0,3,1,2]} : f32[N,8,4,4]
            %m = reduce_mean(%t) {axes=[2,3]} : f32[N,8,1,1]
            %g = reshape(%s) {shape=[-1,8,1,1]} : f32[N,8,1,1]
            %e = mul(%t, %g) : f32[N,8,4,4]
            %f = add(%e, %m) : f32[N,8,4,4]
            %u = transpose(%f) {perm=[0,2,3,1]} : f32[N,4,4,8]
            output y = %u
            """, """
            graph g
            input %x: f32[N,4,4,8] nhwc
            input %s: f32[N,8] nhwc
            %m = global_avg_pool2d(%x) {keepdims=true} : f32[N,1,1,8]
            %g = reshape(%s) {shape=[-1,8,1,1]} : f32[N,8,1,1]
            %g/nhwc = reshape(%g) {shape=[0,1,1,-1]} : f32[N,1,1,8]
            %e = mul(%x, %g/nhwc) : f32[N,4,4,8]
            %u = add(%e, %m) : f32[N,4,4,8]
            output y = %u

            """)
    }

}
