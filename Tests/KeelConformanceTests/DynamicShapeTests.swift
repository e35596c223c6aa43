import Foundation
import Keel
import KeelONNX
import XCTest

/// The exporters' batch-dependent shape patterns (DynamicShapes/, written with ONNX Runtime's
/// outputs by tools/gen_dynamic_fixtures.py): each graph is imported once with its batch left
/// symbolic and run at batch 1 and 4, over the whole batch and image by image, each within 1e-5 + 1e-3·max|ORT| of ONNX Runtime.
final class DynamicShapeTests: XCTestCase {
    private static var folder: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("DynamicShapes").path
    }

    /// Runs the fixture as imported and, when `optimized` lists op counts, also after -O2, whose
    /// graph must then hold exactly those counts of the listed ops (the recognised patterns).
    private func check(_ name: String, optimized: [OpKind: Int]? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        let folder = Self.folder + "/" + name
        let graph = try ModelLoader.infer(importONNXGraph(path: folder + "/model.onnx"))
        XCTAssertEqual(graph.inputs.first?.type.shape.dims.first, "N", "the batch stays symbolic", file: file, line: line)
        try compare(graph, name, folder, file: file, line: line)
        guard let optimized else { return }
        let rewritten = try PassPipeline.standard(level: .O2).run(graph).graph
        for (op, count) in optimized {
            XCTAssertEqual(rewritten.nodes.filter { $0.op == op }.count, count, "\(op) nodes in \(name) after -O2", file: file, line: line)
        }
        try compare(rewritten, name + " after -O2", folder, file: file, line: line)
    }

    /// Over the whole batch, and image by image wherever the graph allows (`BatchSchedule`), on
    /// each case's input (by default the fixture's batch 1 and batch 4 files).
    private func compare(_ graph: Graph, _ name: String, _ folder: String, cases: [String] = ["b1", "b4"],
                         file: StaticString, line: UInt) throws {
        for schedule in [BatchSchedule.wholeBatch, .imageByImage] {
            let compiled = try CompiledModel(graph: graph, context: ExecutionContext(threads: 1, batchSchedule: schedule))
            for tag in cases {
                let input = try loadTensorProto(path: "\(folder)/input_\(tag).pb")
                let expected = try loadTensorProto(path: "\(folder)/output_\(tag).pb")
                let results = try compiled.run(["x": try Tensor(shape: input.shape, values: input.floats())])
                let actual = try XCTUnwrap(results["y"], file: file, line: line)
                let label = "\(name), \(schedule), input \(tag) \(input.shape)"
                XCTAssertEqual(actual.shape, expected.shape, label, file: file, line: line)
                let want = expected.floats()
                let bound = 1e-5 + 1e-3 * (want.map(abs).max() ?? 0)
                let worst = zip(actual.values, want).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, bound, label, file: file, line: line)
            }
        }
    }

    /// Exports that leave the height and width symbolic too (PyTorch's dynamic_axes; a Keras
    /// backbone built without an input size, through tf2onnx): each input's size fixes them when
    /// the graph is imported, the batch stays symbolic, and the results match ONNX Runtime's at
    /// two sizes (odd ones: padding, pooling and the flattening Reshape's target follow), as
    /// imported and after -O2. Without a size the import fails, naming the layer and the remedy.
    func testFreeImageSizes() throws {
        for name in ["pytorch_free_image_size", "tf2onnx_free_image_size"] {
            let folder = Self.folder + "/" + name
            XCTAssertThrowsError(try ModelLoader.infer(importONNXGraph(path: folder + "/model.onnx")), name) { error in
                XCTAssertTrue("\(error)".contains("needs a known height and width"), "\(error)")
                XCTAssertTrue("\(error)".contains("--input-shape"), "\(error)")
            }
            for tag in ["0", "1"] {
                let input = try loadTensorProto(path: "\(folder)/input_\(tag).pb")
                let shapes = InputShapes.ofRunInputs([(name: nil, extents: input.shape)])
                let graph = try ModelLoader.infer(importONNXGraph(path: folder + "/model.onnx", inputShapes: shapes))
                let dims = try XCTUnwrap(graph.inputs.first?.type.shape.dims)
                XCTAssertNil(dims[0].value, "\(name): the batch stays symbolic")
                XCTAssertEqual(dims.dropFirst().map(\.value), input.shape.dropFirst().map { $0 }, name)
                try compare(graph, name, folder, cases: [tag], file: #filePath, line: #line)
                let rewritten = try PassPipeline.standard(level: .O2).run(graph).graph
                try compare(rewritten, name + " after -O2", folder, cases: [tag], file: #filePath, line: #line)
            }
        }
    }

    func testTF2ONNXDenseOverTokens() throws { try check("tf2onnx_dense_over_tokens") }
    func testTokenCountProducts() throws { try check("token_count_products") }
    func testLegacyPyTorchWhereEqualTargets() throws { try check("legacy_pytorch_where_equal") }
    func testGlobalPoolsOfOtherRanks() throws { try check("global_pools_of_other_ranks") }
    func testKerasUpsamplingResizes() throws { try check("keras_upsampling_resizes") }
    /// Einsum's equation forms become transposes, reductions and batched matmuls (or dense layers
    /// once -O2 sees a constant right operand), as imported and after -O2.
    func testEinsumForms() throws {
        try check("einsum_forms", optimized: [:])
        try check("einsum_broadcast", optimized: [:])
    }
    /// ReduceL2 (sum of squares, square root) and ReduceL1 (absolute values, sum).
    func testReduceNorms() throws { try check("reduce_norms", optimized: [:]) }
    /// ECA's 3-tap gate over the pooled channels and a strided, grouped, biased 1-D convolution:
    /// 2-D ones over one-row images.
    func testConv1DForms() throws { try check("conv1d_forms", optimized: [.conv2d: 2]) }
    /// EdgeNeXt's encoding of a mask of the batch's shape runs as imported (an expand, the
    /// cumulative sums on it) and, after -O2, folds to one constant before its projection.
    func testBatchFilledEncoding() throws {
        try check("batch_filled_encoding", optimized: [.cumulativeSum: 0, .sin: 0, .cos: 0, .concat: 0])
    }
    /// ReduceMax and ReduceMin over H and W and over the channels, as imported and channels-last.
    func testMaxMinReductions() throws { try check("max_min_reductions", optimized: [.reduceMax: 2, .reduceMin: 1]) }
    /// GCViT's repeats vector from OneHot with the batch among its values drives a Tile: an expand.
    func testOneHotRepeats() throws { try check("one_hot_repeats", optimized: [.tile: 0]) }

    // Patterns that become one Keel op: the reductions and element-wise steps disappear.
    func testTF2ONNXFusedLayerNorm() throws {
        try check("tf2onnx_fused_layer_norm", optimized: [.layerNorm: 1, .reduceSumSquare: 0, .reduceMean: 0, .mul: 0, .add: 0])
    }
    func testTF2ONNXLayerNormMoments() throws {
        try check("tf2onnx_layer_norm_moments", optimized: [.layerNorm: 2, .reduceMean: 0, .reciprocal: 0, .mul: 0])
    }
    func testTF2ONNXChannelLayerNorm() throws {
        try check("tf2onnx_channel_layer_norm", optimized: [.layerNorm: 1, .reduceMean: 0, .mul: 0])
    }
    func testPyTorchLayerNorms() throws {
        try check("pytorch_layer_norms", optimized: [.layerNorm: 2, .reduceMean: 0, .pow: 0, .div: 0])
    }
    func testDynamoAsStridedGatherIsAReshape() throws { try check("dynamo_as_strided_gather", optimized: [.gather: 0]) }
    func testGeluForms() throws { try check("gelu_forms", optimized: [.gelu: 3, .erf: 0, .tanh: 0, .mul: 0]) }
    /// The head-split views, gathers, scale multiplies, matmuls and softmax become one attention node.
    func testPyTorchAttention() throws {
        for exporter in ["legacy", "dynamo"] {
            try check("pytorch_attention_" + exporter, optimized: [.attention: 1, .matmul: 0, .softmax: 0, .gather: 0, .mul: 0])
        }
    }
}
