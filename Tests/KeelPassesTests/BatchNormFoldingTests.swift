import KeelIR
import KeelPasses
import XCTest

final class BatchNormFoldingTests: XCTestCase {
    private let bn: [(ParameterRole, Shape)] = [(.gamma, [8]), (.beta, [8]), (.movingMean, [8]), (.movingVariance, [8])]

    func testConvBatchNormFoldsIntoKernelAndCreatesBias() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 6, 6, 3])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [3, 3, 3, 8])], ["padding": .string("same")])
        builder.layer("bn", .batchNorm, parameters: bn)
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [BatchNormFolding()])
        XCTAssertEqual(result.graph.ops, [.conv2d])
        let conv = try XCTUnwrap(result.graph.node(named: "conv"))
        XCTAssertEqual(conv.inputs, ["input", "conv/kernel", "conv/bias"])
        XCTAssertEqual(conv.outputs, ["bn"], "the graph output keeps its value name")
        XCTAssertEqual(conv.locations.map(\.line), [2, 3], "the fused node keeps both locations")
        XCTAssertEqual(result.log, ["batch-norm-folding: 1 batch norms and scale/shift ops folded, 1 nodes removed, 896 weight bytes changed"])
        try assertEquivalent(graph, result.graph)
    }

    func testNCHWConvWithOIHWKernelFoldsOnAxisOne() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 3, 6, 6], layout: .nchw)
        builder.layer("conv", .conv2d, parameters: [(.kernel, [8, 3, 3, 3]), (.bias, [8])],
                      ["layout": .string("nchw"), "kernel_layout": .string("oihw"), "strides": .ints([2, 2])])
        builder.layer("bn", .batchNorm, parameters: bn, ["axis": .int(1), "epsilon": .float(1e-5)])
        builder.layer("relu", .relu)
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [BatchNormFolding()])
        XCTAssertEqual(result.graph.ops, [.conv2d, .relu])
        try assertEquivalent(graph, result.graph)
    }

    /// The ResNet head: dense -> BN -> relu -> dense. The BN folds backward into the first dense.
    func testDenseBatchNormReluDenseFoldsBackward() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 12], layout: nil)
        builder.layer("dense", .dense, parameters: [(.kernel, [12, 8]), (.bias, [8])])
        builder.layer("bn", .batchNorm, parameters: bn)
        builder.layer("relu", .relu)
        builder.layer("dense_1", .dense, parameters: [(.kernel, [8, 4]), (.bias, [4])])
        builder.output("logits")
        let graph = try prepared(builder)
        let result = try optimized(graph, [BatchNormFolding()])
        XCTAssertEqual(result.graph.ops, [.dense, .relu, .dense])
        XCTAssertEqual(result.graph.node(named: "relu")?.inputs, ["dense"])
        try assertEquivalent(graph, result.graph)
    }

    func testBatchNormBeforeDenseFoldsForward() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 8], layout: nil)
        builder.layer("bn", .batchNorm, parameters: bn)
        builder.layer("dense", .dense, parameters: [(.kernel, [4, 8])], ["weight_layout": .string("out_in")])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [BatchNormFolding()])
        XCTAssertEqual(result.graph.ops, [.dense])
        XCTAssertEqual(result.graph.node(named: "dense")?.inputs, ["input", "dense/kernel", "dense/bias"])
        XCTAssertEqual(result.graph.node(named: "dense")?.locations.map(\.line), [3, 2])
        try assertEquivalent(graph, result.graph)
    }

    /// Keras's Rescaling and Normalization layers on the image (x·s, then − mean, then ÷ √var)
    /// before a "same"-padded stem, which they cannot fold into (the padding is zero after them):
    /// the three become one batch_norm, one pass instead of three, computing the same values.
    func testScaleAndShiftChainOnTheImageMergesIntoOneBatchNorm() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 6, 6, 3])
        builder.literal("rescale", [])
        builder.literal("mean", [3])
        builder.literal("deviation", [1, 1, 1, 3])
        builder.layer("rescaling", .mul, inputs: ["input", "rescale"])
        builder.layer("centre", .sub, inputs: ["rescaling", "mean"])
        builder.layer("normalize", .div, inputs: ["centre", "deviation"])
        builder.layer("stem", .conv2d, parameters: [(.kernel, [3, 3, 3, 8])], ["padding": .string("same")])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [BatchNormFolding(), DeadCodeElimination()])
        XCTAssertEqual(result.graph.ops, [.batchNorm, .conv2d])
        let merged = try XCTUnwrap(result.graph.node(named: "normalize"))
        XCTAssertEqual(merged.inputs.first, "input")
        XCTAssertEqual(merged.locations.count, 3, "the merged node keeps every location")
        try assertEquivalent(graph, result.graph)
    }

    /// A scale whose output something else reads stays a node of its own.
    func testScaleAndShiftChainWithASecondReaderIsKept() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 4, 4, 3])
        builder.literal("rescale", [3])
        builder.literal("offset", [3])
        builder.layer("rescaling", .mul, inputs: ["input", "rescale"])
        builder.layer("shifted", .add, inputs: ["rescaling", "offset"])
        builder.layer("sum", .add, inputs: ["shifted", "rescaling"])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [BatchNormFolding()])
        XCTAssertEqual(result.graph.ops, [.mul, .add, .add])
        try assertEquivalent(graph, result.graph)
    }

    /// tf2onnx's form: Mul then Add by per-channel constants after the conv.
    func testMulThenAddByPerChannelConstantsFolds() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 5, 5, 4])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [1, 3, 4, 8]), (.bias, [8])])
        builder.literal("scale", [8])
        builder.literal("shift", [1, 1, 1, 8])
        builder.layer("mul", .mul, inputs: ["conv", "scale"])
        builder.layer("add", .add, inputs: ["shift", "mul"])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [BatchNormFolding(), DeadCodeElimination()])
        XCTAssertEqual(result.graph.ops, [.conv2d])
        XCTAssertNil(result.graph.constants["scale"])
        try assertEquivalent(graph, result.graph)
    }

    /// Sub and div by constants are affine too: (c − x) negates the kernel, x / c scales it.
    func testSubtractFromAndDivideByConstantsFold() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 7], layout: nil)
        builder.layer("dense", .dense, parameters: [(.kernel, [7, 8])])
        builder.literal("c", [8])
        builder.layer("flipped", .sub, inputs: ["c", "dense"])
        builder.literal("d", [1])
        builder.layer("divided", .div, inputs: ["flipped", "d"])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [BatchNormFolding()])
        XCTAssertEqual(result.graph.ops, [.dense])
        XCTAssertEqual(result.graph.node(named: "dense")?.outputs, ["divided"])
        try assertEquivalent(graph, result.graph)
    }

    func testKeptWhenProducerFeedsAnotherBranch() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 4, 4, 3])
        builder.layer("conv2", .conv2d, parameters: [(.kernel, [1, 1, 3, 8])])
        builder.layer("bn2", .batchNorm, parameters: bn)
        builder.layer("branch_b", .relu, inputs: ["conv2"])
        builder.layer("sum", .add, inputs: ["bn2", "branch_b"])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [BatchNormFolding()])
        XCTAssertEqual(result.graph, graph)
        XCTAssertEqual(result.explanations, ["batch-norm-folding: kept 'bn2': its input 'conv2' also feeds 'branch_b'"])
    }

    func testKeptWhenKernelIsSharedWithAnotherLayer() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 4, 4, 3])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [1, 1, 3, 8])])
        builder.layer("bn", .batchNorm, parameters: bn)
        builder.layer("twin", .conv2d, inputs: ["input", "conv/kernel"])
        builder.layer("sum", .add, inputs: ["bn", "twin"])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [BatchNormFolding()])
        XCTAssertEqual(result.graph.count(.batchNorm), 1)
        XCTAssertEqual(result.explanations, ["batch-norm-folding: kept 'bn': its weight 'conv/kernel' is also read by 'twin'"])
        try assertEquivalent(graph, result.graph)
    }

    func testKeptWhenConvAlreadyAppliesActivation() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 4, 4, 3])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [1, 1, 3, 8])], ["activation": .string("relu")])
        builder.layer("bn", .batchNorm, parameters: bn)
        builder.output("y")
        let result = try optimized(try prepared(builder), [BatchNormFolding()])
        XCTAssertEqual(result.explanations, ["batch-norm-folding: kept 'bn': 'conv' already applies activation \"relu\""])
    }

    /// Grouped convolutions in both kernel layouts, and a dense in out_in layout.
    func testGroupedConvsAndOutInDenseFold() throws {
        var nhwc = KerasGraphBuilder(name: "g", shape: ["N", 5, 5, 4])
        nhwc.layer("depthwise", .conv2d, parameters: [(.kernel, [3, 3, 1, 8])], ["groups": .int(4), "padding": .string("same")])
        nhwc.layer("bn", .batchNorm, parameters: bn)
        nhwc.output("y")
        var nchw = KerasGraphBuilder(name: "g", shape: ["N", 4, 5, 5], layout: .nchw)
        nchw.layer("grouped", .conv2d, parameters: [(.kernel, [8, 2, 3, 3])],
                   ["groups": .int(2), "layout": .string("nchw"), "kernel_layout": .string("oihw")])
        nchw.layer("bn", .batchNorm, parameters: bn, ["axis": .int(1)])
        nchw.output("y")
        var dense = KerasGraphBuilder(name: "g", shape: ["N", 3, 6], layout: nil)
        dense.layer("gemm", .dense, parameters: [(.kernel, [8, 6]), (.bias, [8])], ["weight_layout": .string("out_in")])
        dense.layer("bn", .batchNorm, parameters: bn)
        dense.output("y")
        for builder in [nhwc, nchw, dense] {
            let graph = try prepared(builder)
            let result = try optimized(graph, [BatchNormFolding()])
            XCTAssertEqual(result.graph.count(.batchNorm), 0, graph.nodes[0].name)
            try assertEquivalent(graph, result.graph)
        }
    }

    /// The ResNet head at -O2, as IR text: one dense with relu and all three source lines.
    func testResNetHeadIRAfterO2() throws {
        var builder = KerasGraphBuilder(name: "head", shape: ["N", 2, 2, 3])
        builder.layer("flatten", .flatten)
        builder.layer("dense", .dense, parameters: [(.kernel, [12, 8]), (.bias, [8])])
        builder.layer("batch_normalization", .batchNorm, parameters: bn)
        builder.layer("activation", .relu)
        builder.layer("dense_1", .dense, parameters: [(.kernel, [8, 4]), (.bias, [4])])
        builder.output("logits")
        let result = try PassPipeline.standard(level: .O2).run(try prepared(builder))
        XCTAssertEqual(result.graph.irText, """
            graph head
            input %input: f32[N,2,2,3] nhwc
            const @dense/kernel: f32[12,8] kernel
            const @dense/bias: f32[8] bias
            const @dense_1/kernel: f32[8,4] kernel
            const @dense_1/bias: f32[4] bias
            %flatten = flatten(%input) : f32[N,12]  # head.keel:2:1
            %dense = dense(%flatten, @dense/kernel, @dense/bias) {activation="relu"} : f32[N,8]  # head.keel:3:1, head.keel:4:1, head.keel:5:1
            %dense_1 = dense(%dense, @dense_1/kernel, @dense_1/bias) : f32[N,4]  # head.keel:6:1
            output logits = %dense_1

            """)
    }

    /// ConvNeXt's layer scale: `γ · dense(x)` with γ per channel scales the kernel's output
    /// columns and the bias. The exporter shares one bias between layers, so the folded dense
    /// gets its own copy (`d1/bias`, [1·2, 1·3]) and the other layer still reads [1, 1].
    func testGoldenLayerScaleFoldsIntoDenseCopyingASharedBias() throws {
        let input = """
            graph g
            input %x: f32[N,3,2] nhwc
            const @d1/kernel: f32[2,2] kernel frozen = [1, 2, 3, 4]
            const @d2/kernel: f32[2,2] kernel frozen = [5, 6, 7, 8]
            const @shared/bias: f32[2] bias frozen = [1, 1]
            const @gamma: f32[2] literal = [2, 3]
            %d1 = dense(%x, @d1/kernel, @shared/bias) : f32[N,3,2]  # g.keel:3:1
            %scaled = mul(@gamma, %d1) : f32[N,3,2]  # g.keel:4:1
            %d2 = dense(%scaled, @d2/kernel, @shared/bias) : f32[N,3,2]  # g.keel:5:1
            output y = %d2
            """
        try assertRewrite(BatchNormFolding(), input, """
            graph g
            input %x: f32[N,3,2] nhwc
            const @d1/kernel: f32[2,2] kernel frozen
            const @d1/bias: f32[2] bias frozen
            const @d2/kernel: f32[2,2] kernel frozen
            const @shared/bias: f32[2] bias frozen
            const @gamma: f32[2] literal
            %d1 = dense(%x, @d1/kernel, @d1/bias) : f32[N,3,2]  # g.keel:3:1, g.keel:4:1
            %d2 = dense(%d1, @d2/kernel, @shared/bias) : f32[N,3,2]  # g.keel:5:1
            output y = %d2

            """)
        let folded = try BatchNormFolding().run(try parseIR(input)).graph
        XCTAssertEqual(folded.constants["d1/kernel"]?.data?.floats(), [2, 6, 6, 12])
        XCTAssertEqual(folded.constants["d1/bias"]?.data?.floats(), [2, 3])
        XCTAssertEqual(folded.constants["shared/bias"]?.data?.floats(), [1, 1])
    }

    /// s = γ/√σ² = [1/2, 3/1], t = β − μ·s = [1 − 2·½, 0 − 1·3] = [0, −3] (ε = 0): kernel output
    /// columns scaled by s, and a bias `c/bias` = t created; the conv takes the BN's value name.
    /// (The BN's vectors stay until dead-code-elimination.)
    func testGoldenConvBatchNormFoldsIntoTheConv() throws {
        let input = """
            graph g
            input %x: f32[N,4,4,3] nhwc
            const @c/kernel: f32[1,1,3,2] kernel frozen = [1, 2, 3, 4, 5, 6]
            const @bn/gamma: f32[2] gamma frozen = [1, 3]
            const @bn/beta: f32[2] beta frozen = [1, 0]
            const @bn/mean: f32[2] moving_mean frozen = [2, 1]
            const @bn/variance: f32[2] moving_variance frozen = [4, 1]
            %c = conv2d(%x, @c/kernel) : f32[N,4,4,2]  # g.keel:3:1
            %bn = batch_norm(%c, @bn/gamma, @bn/beta, @bn/mean, @bn/variance) {epsilon=0.0} : f32[N,4,4,2]  # g.keel:4:1
            output y = %bn
            """
        try assertRewrite(BatchNormFolding(), input, """
            graph g
            input %x: f32[N,4,4,3] nhwc
            const @c/kernel: f32[1,1,3,2] kernel frozen
            const @c/bias: f32[2] bias frozen
            const @bn/beta: f32[2] beta frozen
            const @bn/gamma: f32[2] gamma frozen
            const @bn/mean: f32[2] moving_mean frozen
            const @bn/variance: f32[2] moving_variance frozen
            %bn = conv2d(%x, @c/kernel, @c/bias) : f32[N,4,4,2]  # g.keel:3:1, g.keel:4:1
            output y = %bn

            """)
        let folded = try BatchNormFolding().run(try parseIR(input)).graph
        XCTAssertEqual(folded.constants["c/kernel"]?.data?.floats(), [0.5, 6, 1.5, 12, 2.5, 18])
        XCTAssertEqual(folded.constants["c/bias"]?.data?.floats(), [0, -3])
    }

}
