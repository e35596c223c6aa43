import Foundation
@testable import Keel
import KeelTestSupport
import XCTest

/// Binding ONNX weights to a .keel graph. The fixtures (tools/gen_vgg16_onnx.py --mini) are one
/// small VGG-like network exported two ways, tf2onnx style and PyTorch style, with ONNX
/// Runtime's outputs for the same input: binding either file must reproduce them.
final class WeightBindingTests: XCTestCase {
    static let graph = WeightBindingFixtures.graph
    static let tf2onnx = WeightBindingFixtures.folder.appendingPathComponent("tf2onnx.onnx").path
    static let pytorch = WeightBindingFixtures.folder.appendingPathComponent("pytorch.onnx").path
    static let pytorchDynamo = WeightBindingFixtures.folder.appendingPathComponent("pytorch_dynamo.onnx").path

    private func runGraph(_ graph: String = graph, weights: String, match: WeightMatch) throws -> Tensor {
        let (model, report) = try ModelPipeline(path: graph, weights: .onnx(path: weights, match: match), threads: 1).compile()
        XCTAssertEqual(report.seededParameters, 0)
        let outputs = try model.run(["input_1": try fixtures.tensor("input_b2.npy")])
        return try XCTUnwrap(outputs["logits"])
    }

    func testBindingByNameReproducesONNXRuntime() throws {
        let logits = try runGraph(weights: Self.tf2onnx, match: .name)
        let expected = try fixtures.tensor("tf2onnx_b2_logits.npy")
        XCTAssertEqual(logits.shape, expected.shape)
        XCTAssertLessThan(WeightBindingFixtures.relativeError(logits, expected), 1e-4)
    }

    func testBindingByOrderReproducesONNXRuntime() throws {
        let logits = try runGraph(weights: Self.pytorch, match: .order)
        let expected = try fixtures.tensor("pytorch_b2_logits.npy")
        XCTAssertEqual(logits.shape, expected.shape)
        XCTAssertLessThan(WeightBindingFixtures.relativeError(logits, expected), 1e-4)
    }

    /// Parameters that need no layout change share the file's bytes instead of copying them.
    func testUnconvertedParametersShareTheFilesStorage() throws {
        let graph = try ModelLoader.load(path: Self.graph)
        let plan = try WeightBindingPlan.make(for: graph, onnxPath: Self.tf2onnx, match: .name)
        let bound = plan.apply(to: graph)
        var shared: [String] = []
        for binding in plan.bindings {
            guard case .shared(let data) = binding.recipe else { continue }
            XCTAssertTrue(bound.constants[binding.parameter]?.data?.storage === data.storage, binding.parameter)
            shared.append(binding.parameter)
        }
        // Conv biases, both dense layers (MatMul stores Keras's [in,out]) and the BatchNorm shift.
        XCTAssertEqual(shared.sorted(), ["batch_normalization/beta", "block1_conv1/bias", "block2_conv1/bias", "block2_conv2/bias",
                                         "dense/bias", "dense/kernel", "dense_1/bias", "dense_1/kernel"])
    }

    /// A layer called `model` is named by every tf2onnx node (`model/dense/MatMul`, `model/dense_1/MatMul`).
    func testAmbiguousNamesAreReported() throws {
        let clash = try fixtures.editedGraph(replacing: "dense_1 = dense(3)", with: "model = dense(3)", output: "model")
        XCTAssertThrowsError(try runGraph(clash, weights: Self.tf2onnx, match: .name)) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains("layer 'model' (model/kernel f32[8,3], model/bias f32[3]): ambiguous, named by 'model/dense/MatMul', 'model/dense_1/MatMul'"), text)
            XCTAssertEqual(text.components(separatedBy: "ambiguous").count, 2, "one line for the layer: \(text)")
        }
    }

    /// Both spellings tf2onnx uses carry the Keras layer name as a path component.
    func testKerasLayerNamesAreFoundInTF2ONNXNames() {
        XCTAssertEqual(SourceLayerReader.nameParts("block1_conv1/kernel:0"), ["block1_conv1", "kernel"])
        XCTAssertEqual(SourceLayerReader.nameParts("model/dense_1/BiasAdd/ReadVariableOp:0"), ["model", "dense_1", "BiasAdd", "ReadVariableOp"])
        XCTAssertEqual(SourceLayerReader.nameParts("features.0.weight"), ["features.0.weight"])
    }

    func testPyTorchNamesByNameSuggestMatchingByOrder() throws {
        XCTAssertThrowsError(try runGraph(weights: Self.pytorch, match: .name)) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains("cannot bind 14 parameters"), text)
            XCTAssertTrue(text.contains("try --match order"), text)
        }
    }

    func testShapeMismatchNamesBothShapes() throws {
        let wider = try fixtures.editedGraph(replacing: "block2_conv2 = conv2d(8,", with: "block2_conv2 = conv2d(6,", output: nil)
        XCTAssertThrowsError(try runGraph(wider, weights: Self.tf2onnx, match: .name)) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains("block2_conv2/kernel f32[3,3,8,6]: shape mismatch with model/block2_conv2/Conv2D/ReadVariableOp:0 [8,8,3,3]: [3,3,8,8] after OIHW->HWIO, expected [3,3,8,6]"), text)
            XCTAssertTrue(text.contains("block2_conv2/bias f32[6]: shape mismatch"), text)
            // The next layers' kernels change shape too, and all are in the same error.
            XCTAssertTrue(text.contains("dense/kernel f32[96,8]: shape mismatch"), text)
        }
    }

    /// The dynamo exporter folds BatchNorm1d into the Gemm before it: the graph's batch norm binds
    /// identity statistics, the dense layer the folded weights, and the logits are ONNX Runtime's.
    func testBatchNormFoldedIntoTheGemmBindsAsIdentity() throws {
        let logits = try runGraph(weights: Self.pytorchDynamo, match: .order)
        XCTAssertLessThan(WeightBindingFixtures.relativeError(logits, try fixtures.tensor("pytorch_dynamo_b2_logits.npy")), 1e-5)
        let graph = try ModelLoader.load(path: Self.graph)
        let plan = try WeightBindingPlan.make(for: graph, onnxPath: Self.pytorchDynamo, match: .order)
        let folded = "folded into dense '/classifier/classifier.0/Gemm' by the exporter: identity"
        XCTAssertTrue(plan.explanation.contains("batch_normalization/moving_mean f32[8] <- 0 (\(folded))"), "\(plan.explanation)")
        XCTAssertTrue(plan.explanation.contains("batch_normalization/moving_variance f32[8] <- 1 (\(folded))"), "\(plan.explanation)")
        XCTAssertTrue(plan.explanation.contains("dense_1/kernel f32[8,3] <- classifier.3.weight [3,8] ([out,in]->[in,out])"), "\(plan.explanation)")
        XCTAssertFalse(plan.explanation.contains { $0.hasPrefix("unused") }, "\(plan.explanation)")
    }

    func testOrderMismatchNamesBothKinds() throws {
        let extra = try fixtures.editedGraph(replacing: "block1_pool = max_pool2d(2)", with: "block1_conv2 = conv2d(4, 3, padding: same)\nblock1_pool = max_pool2d(2)", output: nil)
        XCTAssertThrowsError(try runGraph(extra, weights: Self.pytorch, match: .order)) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains("block1_conv2/kernel f32[3,3,4,4]: shape mismatch with features.3.weight [8,4,3,3]"), text)
            XCTAssertTrue(text.contains("layer 'dense' (dense/kernel f32[128,8], dense/bias f32[8]): weighted layer 5 is a dense in the graph but batch norm '/classifier/classifier.1/BatchNormalization' in the file"), text)
            XCTAssertTrue(text.contains("layer 'dense_1' (dense_1/kernel f32[8,3], dense_1/bias f32[3]): the file has only 6 weighted layers; this is layer 7"), text)
        }
    }

    // MARK: Helpers

    private let fixtures = WeightBindingFixtures()

    override func tearDown() {
        fixtures.removeScratch()
        super.tearDown()
    }
}
