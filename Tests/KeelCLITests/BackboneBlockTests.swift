import Keel
import KeelKernels
import XCTest

/// MobileNet/EfficientNet blocks exported the tf2onnx way (NHWC) and ResNet blocks the PyTorch way
/// (NCHW), and a PyTorch feature extractor (NCHW map as output), run end to end at -O2 against ONNX Runtime's outputs (tools/gen_backbone_fixtures.py),
/// at every SIMD level and both batch schedules: depthwise, grouped, pointwise and strided convolutions with fused bias,
/// residual and activation (ReLU, ReLU6, swish, hard-swish), squeeze-excitation (its gate applied
/// apart and folded into the next filter), pools and heads.
final class BackboneBlockTests: XCTestCase {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/backbones")

    func check(_ name: String, fusedAway: [OpKind], file: StaticString = #filePath, line: UInt = #line) throws {
        let path = Self.folder.appendingPathComponent("\(name).onnx").path
        let input = try NpyFile.read(path: Self.folder.appendingPathComponent("\(name)_input.npy").path)
        let expected = try NpyFile.read(path: Self.folder.appendingPathComponent("\(name)_output.npy").path)
        var pipeline = ModelPipeline(path: path, threads: 2)
        let (graph, _) = try pipeline.optimizedGraph()
        for op in fusedAway {
            XCTAssertFalse(graph.nodes.contains { $0.op == op }, "\(name): a \(op) was not fused", file: file, line: line)
        }
        let scale = expected.values.map(abs).max() ?? 0
        XCTAssertGreaterThan(expected.shape.first ?? 0, 1, "\(name): the reference is not a batch", file: file, line: line)
        try forEachCapabilitySet { level in
            // The batch over every layer at once, and image by image wherever the graph allows.
            for schedule in [BatchSchedule.wholeBatch, .imageByImage] {
                pipeline.batchSchedule = schedule
                let (model, _) = try pipeline.compile()
                let inputs = [model.inputNames[0]: input]
                let output = try XCTUnwrap(try model.run(inputs).values.first, file: file, line: line)
                XCTAssertEqual(output.shape, expected.shape, file: file, line: line)
                let error = zip(output.values, expected.values).map { abs($0 - $1) }.max() ?? .infinity
                XCTAssertLessThanOrEqual(error, 1e-5 + 1e-3 * scale, "\(name) at \(level), \(schedule)", file: file, line: line)
                let layersByImage = try model.profile(inputs).filter { $0.images > 1 }.count
                if schedule == .imageByImage {
                    XCTAssertGreaterThan(layersByImage, 2, "\(name): no layers ran image by image", file: file, line: line)
                } else {
                    XCTAssertEqual(layersByImage, 0, file: file, line: line)
                }
            }
        }
    }

    /// Every shortcut add, x·sigmoid(x) and ReLU6 lands in a convolution's epilogue.
    func testMobileNetBlocksMatchONNXRuntime() throws {
        try check("mobilenet_nhwc", fusedAway: [.add, .clip])
    }

    /// The squeeze-excitation gates of the three blocks whose maps have at least four pixels per
    /// projection output are folded into the projection's filter. At batch 1 the last block's gate
    /// scales the input rows as the GEMM packs them (`Conv2D.gateScalesFilter`); at batch 2 it
    /// multiplies apart.
    func testEfficientNetBlocksMatchONNXRuntime() throws {
        try check("efficientnet_nchw", fusedAway: [.add, .sigmoid])
        let (model, _) = try ModelPipeline(path: Self.folder.appendingPathComponent("efficientnet_nchw.onnx").path,
                                           threads: 2).compile()
        for batch in [1, 2] {
            let choices = try model.kernelChoices(bindings: ["N": batch])
            let gates = batch == 1 ? 4 : 3
            XCTAssertEqual(choices.filter { $0.choice.algorithm.hasSuffix("+gate") }.count, gates, "\(choices.map(\.choice.algorithm))")
            XCTAssertEqual(choices.filter { $0.choice.algorithm == "pointwise+residual+gate" }.count, 1)
            XCTAssertEqual(choices.filter { $0.node.contains("mul") }.count, 4 - gates, "\(choices.map(\.node))")
        }
    }

    /// Inverted residual blocks on a map whose expanded tensor (1.2 MB an image) does not fit in
    /// L2: each 1×1 expansion runs inside its depthwise layer, band by band (`ExpansionFusion`), and
    /// its step and its tensor leave the plan, at batch 1 and 2; a 1×1 layer of 96 → 192 channels
    /// (a 72 KB filter, which each band would read again) keeps its own step.
    func testExpansionsRunInsideTheirDepthwiseLayers() throws {
        try check("expansion_nhwc", fusedAway: [.add, .clip])
        let (model, _) = try ModelPipeline(path: Self.folder.appendingPathComponent("expansion_nhwc.onnx").path,
                                           threads: 2).compile()
        let expansion = Conv2DGeometry(batch: 1, input: Size2D(64, 48), inputChannels: 6, outputChannels: 96, kernel: .one)
        let depthwise = Conv2DGeometry(batch: 1, input: Size2D(64, 48), inputChannels: 96, outputChannels: 96,
                                       kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1),
                                       groups: 96)
        guard ExpandedDepthwiseConvolution.canRun(expansion: expansion, depthwise: depthwise) else {
            print("expansion fusion: skipped: no SIMD GEMM and depthwise kernels on this CPU (\(ExecutionContext.simdLevel))")
            return
        }
        for batch in [1, 2] {
            let algorithms = try model.kernelChoices(bindings: ["N": batch]).map(\.choice.algorithm)
            XCTAssertEqual(algorithms.filter { $0.hasPrefix("expansion+depthwise") }.count, 2, "\(algorithms)")
            XCTAssertEqual(algorithms.filter { $0.contains("depthwise") }.count, 3, "\(algorithms)")
        }
    }

    /// Inception's branches: the 5×5 convolution runs F(4×4, 5×5) and the 1×7 and 7×1 ones line
    /// Winograd, at batch 1 and 2, each writing into its slice of the concatenation.
    func testInceptionBlocksMatchONNXRuntime() throws {
        try check("inception_nhwc", fusedAway: [.relu])
        let (model, _) = try ModelPipeline(path: Self.folder.appendingPathComponent("inception_nhwc.onnx").path,
                                           threads: 2).compile()
        for batch in [1, 2] {
            let algorithms = try model.kernelChoices(bindings: ["N": batch]).map(\.choice.algorithm)
            XCTAssertEqual(algorithms.filter { $0.hasPrefix("winograd5x5") }.count, 1, "\(algorithms)")
            XCTAssertEqual(algorithms.filter { $0.hasPrefix("line_winograd") }.count, 2, "\(algorithms)")
        }
    }

    func testResNetBlocksMatchONNXRuntime() throws {
        try check("resnet_nchw", fusedAway: [.add, .relu, .hardSwish])
    }

    /// The NCHW image's transpose to NHWC is no step of its own: the direct stem reads the image
    /// as it is (`InputLayoutFusion`), at any batch; `check` compared the values with ONNX
    /// Runtime's at every level, the generic one (im2col on the image transposed in scratch) too.
    func testStemsReadTheNCHWImageInPlace() throws {
        for (name, stem) in [("resnet_nchw", "conv_2"), ("shufflenet_nchw", "/0/Conv"), ("swin_nchw", "/embed/Conv")] {
            let (model, _) = try ModelPipeline(path: Self.folder.appendingPathComponent("\(name).onnx").path, threads: 2)
                .compile()
            for batch in [1, 3] {
                let choices = try model.kernelChoices(bindings: ["N": batch])
                XCTAssertEqual(choices.filter { $0.choice.algorithm.hasSuffix("+nchw_input") }.map(\.node), [stem],
                               "\(name) at batch \(batch): \(choices.map(\.choice.algorithm))")
                XCTAssertFalse(choices.contains { $0.node.hasSuffix("to_nhwc") }, "\(name): the transpose still runs")
            }
        }
    }

    /// ShuffleNetV2 units as PyTorch exports them (tools/gen_exporter_fixtures.py): the channel
    /// shuffles become gathers on the channel axis and the whole network runs NHWC.
    func testShuffleNetUnitsRunNHWCAndMatchONNXRuntime() throws {
        try check("shufflenet_nchw", fusedAway: [.reshape])
        let (graph, _) = try ModelPipeline(path: Self.folder.appendingPathComponent("shufflenet_nchw.onnx").path, threads: 2)
            .optimizedGraph()
        XCTAssertEqual(graph.nodes.filter { $0.op == .gather }.count, 2)
        XCTAssertFalse(graph.nodes.contains { $0.attributes["layout"] == .string("nchw") }, "a layer still runs NCHW")
        // The input's transpose to NHWC and the feature map's back to NCHW: no shuffle is left.
        XCTAssertEqual(graph.nodes.filter { $0.op == .transpose }.count, 2, "\(graph.nodes.map(\.op))")
    }

    /// ResNeSt bottlenecks as timm writes them (tools/gen_exporter_fixtures.py): each split
    /// attention sums its grouped convolution's output over the radix through a 5-D reshape, once
    /// plain and once gated. Both sums become a split and an add, so the blocks run NHWC with their
    /// shortcut adds fused; the transposes left are the image's, the feature map's and the radix
    /// softmax's on [N, 1, 2, C]. The second block's grouped convolution (two groups of 16 input
    /// channels) runs as one convolution per group; the first's (groups of 8) stays grouped.
    func testResNeStBlocksRunNHWCAndMatchONNXRuntime() throws {
        try check("resnest_nchw", fusedAway: [.reduceSum])
        let (graph, _) = try ModelPipeline(path: Self.folder.appendingPathComponent("resnest_nchw.onnx").path, threads: 2)
            .optimizedGraph()
        XCTAssertFalse(graph.nodes.contains { $0.attributes["layout"] == .string("nchw") }, "a layer still runs NCHW")
        // The sums' four splits, less the one of the split block's output (its radix pieces are
        // the groups' outputs), plus that block's split of its input into groups.
        XCTAssertEqual(graph.nodes.filter { $0.op == .split }.count, 4)
        XCTAssertEqual(graph.nodes.filter { $0.op == .conv2d && $0.attributes.int("groups") == 2 }.map(\.name), ["/2/conv2/conv/Conv"])
        XCTAssertEqual(graph.nodes.filter { $0.name.hasPrefix("/3/conv2/conv/Conv/") }.map(\.op), [.split, .conv2d, .conv2d])
        XCTAssertEqual(graph.nodes.filter { $0.op == .transpose }.count, 4, "\(graph.nodes.map(\.op))")
        XCTAssertFalse(graph.nodes.contains { $0.op == .add && $0.name.contains("/Add") }, "a shortcut add was not fused")
    }

    /// A timm selective-kernel convolution (tools/gen_exporter_fixtures.py): its two paths are
    /// stacked with Unsqueeze and Concat and summed, plain and gated by a softmax over the paths.
    /// Both sums become adds of the paths (the gate sliced per path), so everything runs NHWC: the
    /// transposes left are the image's and the output's.
    func testSelectiveKernelPathsRunNHWCAndMatchONNXRuntime() throws {
        try check("sknet_nchw", fusedAway: [.reduceSum, .concat, .unsqueeze])
        let (graph, _) = try ModelPipeline(path: Self.folder.appendingPathComponent("sknet_nchw.onnx").path, threads: 2)
            .optimizedGraph()
        XCTAssertFalse(graph.nodes.contains { $0.attributes["layout"] == .string("nchw") }, "a layer still runs NCHW")
        XCTAssertEqual(graph.nodes.filter { $0.op == .transpose }.count, 2, "\(graph.nodes.map(\.op))")
    }

    /// Swin blocks from both PyTorch exporters: window attention masks built by slice assignments
    /// (ScatterND), pads computed through a table (TorchScript) or with Not (dynamo). The masks
    /// fold at compile time; every SIMD level matches ONNX Runtime.
    func testSwinBlocksFromBothExportersMatchONNXRuntime() throws {
        for name in ["swin_nchw", "swin_dynamo"] {
            let pipeline = ModelPipeline(path: Self.folder.appendingPathComponent("\(name).onnx").path, threads: 2)
            let (graph, _) = try pipeline.optimizedGraph()
            XCTAssertFalse(graph.nodes.contains { $0.op == .scatterND || $0.op == .not }, "\(name): a mask was not folded")
            // The position table and the shifted windows' masks ride on the attention nodes' bias.
            XCTAssertTrue(graph.nodes.contains { $0.op == .attention && $0.inputs.count == 4 }, "\(name): no biased attention")
            XCTAssertFalse(graph.nodes.contains { $0.op == .softmax }, "\(name): a softmax was left")
            try checkValues(name, pipeline)
        }
    }

    /// Every SIMD level's output of `name` within 1e-5 + 1e-3·max|ORT| of ONNX Runtime's.
    func checkValues(_ name: String, _ pipeline: ModelPipeline, file: StaticString = #filePath, line: UInt = #line) throws {
        let input = try NpyFile.read(path: Self.folder.appendingPathComponent("\(name)_input.npy").path)
        let expected = try NpyFile.read(path: Self.folder.appendingPathComponent("\(name)_output.npy").path)
        let scale = expected.values.map(abs).max() ?? 0
        try forEachCapabilitySet { level in
            let (model, _) = try pipeline.compile()
            let output = try XCTUnwrap(try model.run([model.inputNames[0]: input]).values.first, file: file, line: line)
            XCTAssertEqual(output.shape, expected.shape, file: file, line: line)
            let error = zip(output.values, expected.values).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(error, 1e-5 + 1e-3 * scale, "\(name) at \(level)", file: file, line: line)
        }
    }

    /// Swin V2 blocks: F.normalize's ReduceL2 imports as a sum of squares and a square root, which
    /// with the clip and division after it becomes the attention node's `normalize` (cosine
    /// attention, one node per block); the relative-position MLP, which reads only constants,
    /// folds at compile time with the gather, sigmoid and scale after it.
    func testSwinV2BlocksMatchONNXRuntime() throws {
        let pipeline = ModelPipeline(path: Self.folder.appendingPathComponent("swin_v2_nchw.onnx").path, threads: 2)
        let (graph, _) = try pipeline.optimizedGraph()
        let attention = graph.nodes.filter { $0.op == .attention }
        XCTAssertEqual(attention.count, 2, "\(graph.nodes.map(\.op))")
        // The logit scale, log 10 for every head as initialised, becomes the scale.
        XCTAssertTrue(attention.allSatisfy { $0.attributes.bool("normalize") == true && $0.attributes.float("scale") == 10 },
                      "\(attention.map(\.attributes))")
        XCTAssertFalse(graph.nodes.contains { [.reduceSumSquare, .softmax, .matmul].contains($0.op) }, "\(graph.nodes.map(\.op))")
        XCTAssertFalse(graph.nodes.contains { $0.name.contains("cpb_mlp") || $0.op == .sigmoid },
                       "the position MLP was not folded: \(graph.nodes.map(\.name))")
        try checkValues("swin_v2_nchw", pipeline)
    }

    /// A MaxViT layer: its Einsum products become one attention node per block, GELU rides in the epilogue of every
    /// convolution and dense layer that produces it (none is left as a pass of its own), and the
    /// MBConv runs NHWC though the attention's reshapes read NCHW.
    func testMaxViTLayerMatchesONNXRuntime() throws {
        let pipeline = ModelPipeline(path: Self.folder.appendingPathComponent("maxvit_nchw.onnx").path, threads: 2)
        let (graph, _) = try pipeline.optimizedGraph()
        XCTAssertFalse(graph.nodes.contains { $0.op == .gelu }, "a GELU was not fused: \(graph.nodes.map(\.op))")
        XCTAssertEqual(graph.nodes.filter { $0.op == .conv2d && $0.attributes["activation"] == .string("gelu") }.count, 2)
        // Window and grid attention each one node, over [images, windows, heads, tokens, head size]
        // operands sliced from one QKV projection: no matmul or softmax of the Einsums left.
        XCTAssertEqual(graph.nodes.filter { $0.op == .attention }.count, 2, "\(graph.nodes.map(\.op))")
        XCTAssertFalse(graph.nodes.contains { $0.op == .matmul || $0.op == .softmax }, "\(graph.nodes.map(\.op))")
        // The MBConv runs NHWC between the input's transpose and the one before the window partition.
        XCTAssertFalse(graph.nodes.contains { $0.attributes["layout"] == .string("nchw") }, "a layer still runs NCHW")
        try checkValues("maxvit_nchw", pipeline)
    }

    /// A PyTorch backbone exported for its feature map runs NHWC like one with a head; only its
    /// output is transposed back to NCHW.
    func testFeatureMapBackboneRunsNHWCAndMatchesONNXRuntime() throws {
        try check("features_nchw", fusedAway: [.clip, .relu])
        let (graph, _) = try ModelPipeline(path: Self.folder.appendingPathComponent("features_nchw.onnx").path, threads: 2)
            .optimizedGraph()
        XCTAssertFalse(graph.nodes.contains { $0.attributes["layout"] == .string("nchw") }, "a layer still runs NCHW")
        XCTAssertEqual(graph.nodes.filter { $0.op == .transpose }.count, 2, "\(graph.nodes.map(\.op))")
        XCTAssertEqual(graph.nodes.last?.op, .transpose)
        XCTAssertEqual(graph.nodes.last?.outputs, graph.outputs.map(\.value))
    }
}

/// Runs `body` with Keel's kernel table filled from each capability set this CPU has in turn.
private func forEachCapabilitySet(_ body: (CPUCapabilities) throws -> Void) rethrows {
    defer { CPUCapabilities.restoreDetected() }
    for capabilities in CPUCapabilities.everyPathPresent {
        CPUCapabilities.restrict(to: capabilities)
        try body(capabilities)
    }
}
