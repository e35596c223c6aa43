import Foundation
import KeelFormat
import KeelIR
import KeelPasses
import XCTest

/// The pipeline on the transfer-learning graphs users compile: VGG16 with the ResNet and ViT
/// heads (from graphs/, and small-input variants for numeric checks), and the same network in
/// the form tf2onnx exports it.
final class ModelGraphTests: XCTestCase {
    private static let graphs = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("graphs")

    /// The graph with weights bound; `headOnly` leaves VGG16's frozen convolutions unbound,
    /// which no pass rewrites (they already apply their ReLU), to keep structural tests fast.
    private func loadBound(_ file: String, headOnly: Bool = false) throws -> Graph {
        let graph = try loadKeelGraph(path: Self.graphs.appendingPathComponent(file).path)
        return bindTestWeights(try ShapeInference().run(graph).graph) { !headOnly || !$0.name.hasPrefix("block") }
    }

    private func optimizedFully(_ graph: Graph) throws -> PipelineResult {
        try PassPipeline.standard(level: .O2).run(graph)
    }

    func testResNetHeadAtO2HasNoBatchNormAndOneDenseWithRelu() throws {
        let graph = try loadBound("vgg16_resnet_head.keel", headOnly: true)
        let result = try optimizedFully(graph)
        XCTAssertEqual(result.graph.count(.batchNorm), 0)
        XCTAssertEqual(result.graph.count(.relu), 0)
        XCTAssertEqual(result.graph.count(.conv2d), 13)
        let dense = try XCTUnwrap(result.graph.node(named: "dense"))
        XCTAssertEqual(dense.attributes["activation"], .string("relu"))
        XCTAssertEqual(dense.locations.count, 3, "dense, batch_normalization and activation lines")
        XCTAssertEqual(result.graph.node(named: "dense_1")?.inputs.first, dense.outputs.first)
        XCTAssertEqual(result.graph.outputs, [GraphOutput(name: "logits", value: "dense_1", location: graph.outputs[0].location)])
        XCTAssertEqual(FreezeAnalysis(result.graph).boundary, ["flatten"])
    }

    func testViTHeadAtO2HasNoConvInItsHead() throws {
        let result = try optimizedFully(try loadBound("vgg16_vit_head.keel", headOnly: true))
        XCTAssertEqual(result.graph.node(named: "conv2d")?.op, .dense)
        XCTAssertEqual(result.graph.count(.conv2d), 13, "only VGG16's 3×3 convolutions remain")
        XCTAssertEqual(result.graph.valueTypes["layer_normalization"], TensorType(.float32, ["N", 49, 768]))
    }

    /// VGG16's structure at an eighth of its width on a 64×64 input (the heads see [N,2,2,64]).
    func testSmallVGGWithBothHeadsMatchesUnoptimised() throws {
        var resnet = KerasGraphBuilder.narrowVGG16(size: 64, divisor: 8)
        resnet.layer("flatten", .flatten)
        resnet.layer("dense", .dense, parameters: [(.kernel, [256, 32]), (.bias, [32])])
        resnet.layer("batch_normalization", .batchNorm,
                     parameters: [(.gamma, [32]), (.beta, [32]), (.movingMean, [32]), (.movingVariance, [32])])
        resnet.layer("activation", .relu)
        resnet.layer("dense_1", .dense, parameters: [(.kernel, [32, 10]), (.bias, [10])])
        resnet.output("logits")
        let resnetGraph = try prepared(resnet)
        let optimizedResNet = try optimizedFully(resnetGraph).graph
        XCTAssertEqual(optimizedResNet.count(.batchNorm), 0)
        XCTAssertEqual(optimizedResNet.node(named: "dense")?.attributes["activation"], .string("relu"))
        try assertEquivalent(resnetGraph, optimizedResNet)

        var vit = KerasGraphBuilder.narrowVGG16(size: 64, divisor: 8)
        vit.layer("conv2d", .conv2d, parameters: [(.kernel, [1, 1, 64, 96]), (.bias, [96])], ["padding": .string("same")])
        vit.layer("reshape", .reshape, ["shape": .ints([0, -1, 96])])
        vit.layer("layer_normalization", .layerNorm, parameters: [(.gamma, [96]), (.beta, [96])])
        vit.output("tokens")
        let vitGraph = try prepared(vit)
        let optimizedViT = try optimizedFully(vitGraph).graph
        XCTAssertEqual(optimizedViT.node(named: "conv2d")?.op, .dense)
        XCTAssertEqual(optimizedViT.valueTypes["layer_normalization"], TensorType(.float32, ["N", 4, 96]))
        try assertEquivalent(vitGraph, optimizedViT)
    }

    /// tf2onnx's export of a small VGG-like model: NHWC input, Transpose to NCHW, Conv + Relu
    /// nodes, BN as Mul/Add, MaxPool, Transpose back, Flatten, Gemm (out_in) with a BN before it.
    func testTF2ONNXFormCompilesToNHWCWithFusedEpilogues() throws {
        let nchw: [String: AttributeValue] = ["layout": .string("nchw"), "kernel_layout": .string("oihw"), "padding": .string("same")]
        var builder = KerasGraphBuilder(name: "onnx", shape: ["N", 16, 16, 3])
        builder.layer("transpose_in", .transpose, ["perm": .ints([0, 3, 1, 2])])
        builder.layer("block1_conv1", .conv2d, parameters: [(.kernel, [8, 3, 3, 3]), (.bias, [8])], nchw)
        builder.layer("block1_relu1", .relu)
        builder.layer("block1_conv2", .conv2d, parameters: [(.kernel, [8, 8, 3, 3])], nchw)
        builder.literal("bn_scale", [8, 1, 1])
        builder.literal("bn_shift", [8, 1, 1])
        builder.layer("bn_mul", .mul, inputs: ["block1_conv2", "bn_scale"])
        builder.layer("bn_add", .add, inputs: ["bn_mul", "bn_shift"])
        builder.layer("block1_relu2", .relu)
        builder.layer("block1_pool", .maxPool2d, ["layout": .string("nchw")])
        builder.layer("transpose_out", .transpose, ["perm": .ints([0, 2, 3, 1])])
        builder.layer("flatten", .flatten)
        builder.layer("dropout", .dropout)
        builder.layer("bn", .batchNorm, parameters: [(.gamma, [512]), (.beta, [512]), (.movingMean, [512]), (.movingVariance, [512])])
        builder.layer("gemm", .dense, parameters: [(.kernel, [10, 512]), (.bias, [10])], ["weight_layout": .string("out_in")])
        builder.layer("softmax", .softmax)
        builder.output("probabilities")
        let graph = try prepared(builder)
        let result = try optimizedFully(graph)
        XCTAssertEqual(result.graph.ops, [.conv2d, .conv2d, .flatten, .dense])
        XCTAssertEqual(result.graph.nodes.map(\.name), ["block1_conv1", "block1_conv2", "flatten", "gemm"])
        XCTAssertEqual(result.graph.node(named: "block1_conv2")?.attributes,
                       Attributes(["kernel_layout": .string("oihw"), "padding": .string("same"), "activation": .string("relu"),
                                   "pool": .string("max2x2")]))
        XCTAssertEqual(result.graph.node(named: "gemm")?.attributes["activation"], .string("softmax"))
        XCTAssertEqual(result.graph.outputs.first?.value, "softmax")
        XCTAssertEqual(result.explanations, [])
        try assertEquivalent(graph, result.graph)
    }

    func testFreezeAnalysisFindsTheFeatureBoundary() throws {
        var builder = KerasGraphBuilder.vgg16(size: 32)
        builder.denseHead(features: 512)
        builder.output("predictions")
        let analysis = FreezeAnalysis(try ShapeInference().run(builder.graph).graph)
        XCTAssertEqual(analysis.frozenNodes.count, 19, "18 VGG16 layers and the parameter-free flatten")
        XCTAssertEqual(analysis.frozenNodes.last, "flatten")
        XCTAssertEqual(analysis.boundary, ["flatten"])
    }

    /// Every shipped graph compiles at -O2 before weights exist: the passes that need data
    /// explain why they waited; the others still apply.
    func testEveryShippedGraphCompilesAtO2WithoutWeights() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.graphs.path).filter { $0.hasSuffix(".keel") }.sorted()
        XCTAssertEqual(files.count, 6)
        for file in files where file != "heads.keel" {
            let graph = try ShapeInference().run(try loadKeelGraph(path: Self.graphs.appendingPathComponent(file).path)).graph
            let result = try PassPipeline.standard(level: .O2).run(graph)
            XCTAssertEqual(result.graph.outputs, graph.outputs, file)
            if file == "vgg16_two_heads.keel" {
                XCTAssertEqual(result.graph.node(named: "conv2d")?.op, .dense)
                XCTAssertEqual(result.explanations, ["batch-norm-folding: kept 'batch_normalization': its parameters are not bound float constants"])
                // block5_pool now runs inside block5_conv3.
                XCTAssertEqual(FreezeAnalysis(result.graph).boundary, ["block5_conv3", "flatten"])
            }
        }
    }

    /// The one full-size check: VGG16 + ResNet head at 224×224, -O2 against -O0.
    func testFullSizeResNetHeadMatchesUnoptimised() throws {
        let graph = try loadBound("vgg16_resnet_head.keel")
        try assertEquivalent(graph, try optimizedFully(graph).graph, batch: 1)
    }
}
