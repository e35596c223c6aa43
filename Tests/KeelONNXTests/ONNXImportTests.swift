import Foundation
import KeelIR
@testable import KeelONNX
import XCTest

/// Whole-graph import: IR ops and attributes per spec/ir.md, symbolic batches, folded reshapes.
final class ONNXImportTests: XCTestCase {
    func testImportsConvReluPoolFlattenGemm() throws {
        let path = Fixtures.path("cnn.onnx")
        let graph = try importONNXGraph(path: path)
        XCTAssertEqual(graph.nodes.map(\.op), [.conv2d, .relu, .maxPool2d, .flatten, .dense], describe(graph))
        XCTAssertEqual(graph.nodes.map(\.name), ["conv1", "relu1", "pool1", "flatten", "fc"])
        XCTAssertEqual(graph.inputs.map(\.name), ["input"])
        XCTAssertEqual(graph.inputs.first?.type, TensorType(.float32, ["N", 3, 8, 8]))
        XCTAssertEqual(graph.inputs.first?.layout, .nchw)

        let conv = try XCTUnwrap(graph.node(named: "conv1"))
        XCTAssertEqual(conv.inputs, ["input", "conv1.weight", "conv1.bias"])
        XCTAssertEqual(conv.attributes.string("layout"), "nchw")
        XCTAssertEqual(conv.attributes.string("kernel_layout"), "oihw")
        XCTAssertEqual(conv.attributes.string("padding"), "explicit")
        XCTAssertEqual(conv.attributes.ints("pads"), [1, 1, 1, 1])
        XCTAssertEqual(conv.attributes.ints("strides"), [1, 1])
        XCTAssertEqual(conv.location, .named(path, "conv1"))

        let pool = try XCTUnwrap(graph.node(named: "pool1"))
        XCTAssertEqual(pool.inputs, ["relu1"])
        XCTAssertEqual(pool.attributes.ints("pool_size"), [2, 2])
        XCTAssertEqual(pool.attributes.ints("strides"), [2, 2])
        XCTAssertEqual(pool.attributes.string("padding"), "valid")
        XCTAssertEqual(graph.node(named: "flatten")?.attributes.int("axis"), 1)

        let dense = try XCTUnwrap(graph.node(named: "fc"))
        XCTAssertEqual(dense.inputs, ["flatten", "fc.weight", "fc.bias"])
        XCTAssertEqual(dense.attributes.string("weight_layout"), "out_in")
        XCTAssertEqual(graph.outputs, [GraphOutput(name: "logits", value: "fc", location: .named(path, "logits"))])

        XCTAssertEqual(graph.constants["conv1.weight"]?.role, .kernel)
        XCTAssertEqual(graph.constants["conv1.weight"]?.type, TensorType(.float32, [4, 3, 3, 3]))
        XCTAssertEqual(graph.constants["conv1.bias"]?.role, .bias)
        XCTAssertEqual(graph.constants["fc.weight"]?.role, .kernel)
        XCTAssertEqual(graph.constants["fc.bias"]?.trainable, true)
        XCTAssertEqual(graph.constants["fc.bias"]?.data?.shape, [5])
        XCTAssertEqual(Set(graph.constants.keys), ["conv1.weight", "conv1.bias", "fc.weight", "fc.bias"])
    }

    /// Training information marks which initializers are trainable; without it all are.
    func testTrainingInformationFreezesParameters() throws {
        let frozen = try importONNXGraph(path: Fixtures.path("cnn_frozen.onnx"))
        XCTAssertEqual(frozen.constants["conv1.weight"]?.trainable, false)
        XCTAssertEqual(frozen.constants["conv1.bias"]?.trainable, false)
        XCTAssertEqual(frozen.constants["fc.weight"]?.trainable, true)
        XCTAssertEqual(frozen.constants["fc.bias"]?.trainable, true)
        XCTAssertEqual(frozen.constants["conv1.weight"]?.role, .kernel)
        let plain = try importONNXGraph(path: Fixtures.path("cnn.onnx"))
        XCTAssertEqual(plain.constants["conv1.weight"]?.trainable, true)
    }

    /// The tf2onnx pattern: NHWC input, Transposes, BN as Mul+Add, Flatten through a shape
    /// subgraph that must fold into reshape [0, -1], Dense as MatMul+Add fused into dense+bias.
    func testImportsTF2ONNXStyleModel() throws {
        for name in ["tf2onnx_style", "tf2onnx_style_opset11"] {
            let graph = try importONNXGraph(path: Fixtures.path(name + ".onnx"))
            XCTAssertEqual(graph.nodes.map(\.op),
                           [.transpose, .conv2d, .relu, .transpose, .mul, .add, .reshape, .dense, .softmax],
                           "\(name): \(describe(graph))")
            XCTAssertEqual(graph.inputs.first?.type, TensorType(.float32, ["N", 8, 8, 3]))
            XCTAssertEqual(graph.inputs.first?.layout, .nhwc)
            let reshape = try XCTUnwrap(graph.nodes.first { $0.op == .reshape })
            XCTAssertEqual(reshape.attributes.ints("shape"), [0, -1], name)
            XCTAssertEqual(reshape.inputs, ["model/batch_normalization/add"])
            XCTAssertEqual(reshape.name, "model/flatten/Reshape")
            let conv = try XCTUnwrap(graph.nodes.first { $0.op == .conv2d })
            XCTAssertEqual(conv.attributes.string("padding"), "same")
            XCTAssertEqual(conv.inputs[0], "model/conv2d/Conv2D__6")
            XCTAssertEqual(graph.nodes.first?.attributes.ints("perm"), [0, 3, 1, 2])
            let dense = try XCTUnwrap(graph.nodes.first { $0.op == .dense })
            XCTAssertEqual(dense.name, "model/dense/BiasAdd")
            XCTAssertEqual(dense.inputs, ["model/flatten/Reshape", "dense/kernel", "dense/bias"])
            XCTAssertEqual(dense.attributes.string("weight_layout"), "in_out")
            XCTAssertEqual(dense.locations.count, 2)
            XCTAssertEqual(graph.nodes.last?.attributes.int("axis"), -1, name)
            XCTAssertEqual(graph.nodes.last?.inputs, ["model/dense/BiasAdd"])
            XCTAssertEqual(graph.outputs.first?.value, "model/dense/Softmax")
            // The shape arithmetic left no constants behind; the folded BN stays literal.
            XCTAssertEqual(Set(graph.constants.keys),
                           ["conv2d/kernel", "conv2d/bias", "bn/scale", "bn/offset", "dense/kernel", "dense/bias"], name)
            XCTAssertEqual(graph.constants["dense/bias"]?.role, .bias)
            XCTAssertEqual(graph.constants["bn/scale"]?.role, .literal)
            XCTAssertEqual(graph.constants["dense/kernel"]?.type, TensorType(.float32, [256, 5]))
        }
    }

    /// Keras Reshape((-1, C)) through Shape/Cast/Slice/Squeeze/Unsqueeze/Concat/Cast folds to
    /// [0, -1, C]; the decomposed LayerNormalization stays element-wise ops.
    func testImportsViTHeadStyleModel() throws {
        let graph = try importONNXGraph(path: Fixtures.path("vit_head_style.onnx"))
        XCTAssertEqual(graph.nodes.map(\.op), [.transpose, .conv2d, .transpose, .reshape, .reduceMean, .sub, .pow,
                                               .reduceMean, .add, .sqrt, .div, .mul, .add], describe(graph))
        let reshape = try XCTUnwrap(graph.node(named: "model/reshape/Reshape"))
        XCTAssertEqual(reshape.attributes.ints("shape"), [0, -1, 16])
        XCTAssertEqual(reshape.inputs, ["model/conv/Conv2D__7"])
        XCTAssertEqual(graph.node(named: "model/conv/Conv2D")?.attributes.string("padding"), "same")
        XCTAssertEqual(graph.node(named: "model/layer_norm/moments/mean")?.attributes.ints("axes"), [-1])
        XCTAssertEqual(Set(graph.constants.keys), ["conv/kernel", "conv/bias", "two", "epsilon",
                                                   "layer_norm/gamma", "layer_norm/beta"])
        XCTAssertEqual(graph.inputs.first?.type, TensorType(.float32, ["N", 7, 7, 8]))
        XCTAssertEqual(graph.outputs.map(\.value), ["model/layer_norm/add_1"])
    }

    func testImportsExternalWeights() throws {
        let graph = try importONNXGraph(path: Fixtures.path("external.onnx"))
        XCTAssertEqual(graph.nodes.map(\.op), [.dense])
        XCTAssertEqual(graph.nodes.first?.inputs, ["x", "dense/kernel", "dense/bias"])
        XCTAssertEqual(graph.inputs.first?.type, TensorType(.float32, [.symbol("batch"), 4]))
        let expected = try Fixtures.expected("external")
        let facts = try XCTUnwrap((expected["initializers"] as? [String: [String: Any]])?["dense/kernel"])
        let first = try XCTUnwrap(facts["first"] as? [Double])
        let kernel = try XCTUnwrap(graph.constants["dense/kernel"]?.data)
        for (actual, wanted) in zip(kernel.floats(), first) { XCTAssertEqual(Double(actual), wanted, accuracy: 1e-7) }
    }

    func testTypedFieldsBecomeConstantsOfEachDType() throws {
        let graph = try importONNXGraph(path: Fixtures.path("typed_fields.onnx"))
        // Identity of a small integer or bool constant (shape arithmetic) is evaluated at import
        // time; the rest are nodes.
        XCTAssertEqual(graph.nodes.map(\.name), ["id_f32", "id_f64", "id_f16"])
        XCTAssertTrue(graph.nodes.allSatisfy { $0.op == .identity })
        XCTAssertEqual(graph.constants["f16"]?.type, TensorType(.float16, [2]))
        let bool = try XCTUnwrap(graph.outputs.first { $0.name == "b_out" }?.value)
        XCTAssertEqual(graph.constants[bool]?.type, TensorType(.bool, [3]))
        let folded = try XCTUnwrap(graph.outputs.first { $0.name == "i64_out" }?.value)
        XCTAssertEqual(graph.constants[folded]?.data?.int64s(), [1 << 40, -3])
        XCTAssertEqual(graph.outputs.count, 6)
    }
}

/// Ops whose parameters moved from attributes to inputs between opsets import the same way.
final class ONNXOpsetTests: XCTestCase {
    func testAttributesAndConstantInputsGiveTheSameIR() throws {
        for opset in [9, 18] {
            let graph = try importONNXGraph(path: Fixtures.path("ops_opset\(opset).onnx"))
            let nodes = Dictionary(uniqueKeysWithValues: graph.nodes.map { ($0.name, $0) })
            let context = "opset \(opset)"
            XCTAssertEqual(nodes["slice"]?.attributes.ints("starts"), [1], context)
            XCTAssertEqual(nodes["slice"]?.attributes.ints("ends"), [3], context)
            XCTAssertEqual(nodes["slice"]?.attributes.ints("axes"), [1], context)
            XCTAssertEqual(nodes["pad"]?.attributes.ints("pads"), [0, 0, 1, 0, 0, 1], context)
            XCTAssertEqual(nodes["pad"]?.attributes.float("value"), 0.5, context)
            XCTAssertEqual(nodes["clip"]?.attributes.float("min"), -1, context)
            XCTAssertEqual(nodes["clip"]?.attributes.float("max"), 1, context)
            XCTAssertEqual(nodes["unsqueeze"]?.attributes.ints("axes"), [1], context)
            XCTAssertEqual(nodes["squeeze"]?.attributes.ints("axes"), [1], context)
            XCTAssertEqual(nodes["dropout"]?.op, .dropout, context)
            XCTAssertEqual(nodes["dropout"]?.attributes.float("rate"), 0.25, context)
            XCTAssertEqual(nodes["reduce_mean"]?.attributes.ints("axes"), [2], context)
            XCTAssertEqual(nodes["reduce_mean"]?.attributes.bool("keepdims"), true, context)
            XCTAssertEqual(nodes["reshape"]?.attributes.ints("shape"), [0, 2], context)
            // A rank-2 softmax over axis 1 is a last-axis softmax in every opset.
            XCTAssertEqual(nodes["softmax_2d"]?.op, .softmax, context)
            XCTAssertEqual(nodes["softmax_2d"]?.attributes.int("axis"), -1, context)
            // Gemm with alpha 0.5 and beta 2 is spelled out.
            XCTAssertEqual(nodes["gemm/matmul"]?.op, .matmul, context)
            XCTAssertEqual(nodes["gemm/matmul"]?.inputs, ["softmax_2d", "gemm/b"], context)
            XCTAssertEqual(nodes["gemm/times_alpha"]?.op, .mul, context)
            XCTAssertEqual(nodes["gemm/times_alpha"]?.inputs, ["gemm/matmul", "gemm/alpha"], context)
            XCTAssertEqual(nodes["gemm/c_times_beta"]?.inputs, ["gemm/c", "gemm/beta"], context)
            XCTAssertEqual(nodes["gemm"]?.op, .add, context)
            XCTAssertEqual(nodes["gemm"]?.inputs, ["gemm/times_alpha", "gemm/c_times_beta"], context)
            XCTAssertEqual(graph.constants["gemm/alpha"]?.data?.floats(), [0.5], context)
            XCTAssertEqual(graph.constants["gemm/beta"]?.data?.floats(), [2], context)
            XCTAssertEqual(graph.outputs.map(\.value), ["gemm", "softmax_3d"], context)
            // Only constants the graph reads remain (axes, pads and bounds became attributes).
            XCTAssertEqual(graph.constants.keys.filter { !$0.hasPrefix("gemm/") }, [], context)
        }
    }

    /// Before opset 13, Softmax over axis 1 of a rank-3 tensor normalises over the flattened
    /// trailing axes; from 13 it normalises over axis 1 alone.
    func testSoftmaxCoercionBeforeOpset13() throws {
        let old = try importONNXGraph(path: Fixtures.path("ops_opset9.onnx"))
        XCTAssertEqual(old.node(named: "softmax_3d/flatten")?.attributes.int("axis"), 1)
        XCTAssertEqual(old.node(named: "softmax_3d/softmax")?.attributes.int("axis"), -1)
        XCTAssertEqual(old.node(named: "softmax_3d")?.op, .reshape)
        XCTAssertEqual(old.node(named: "softmax_3d")?.attributes.ints("shape"), [-1, 2, 8])
        let new = try importONNXGraph(path: Fixtures.path("ops_opset18.onnx"))
        XCTAssertEqual(new.node(named: "softmax_3d")?.op, .softmax)
        XCTAssertEqual(new.node(named: "softmax_3d")?.attributes.int("axis"), 1)
    }
}
