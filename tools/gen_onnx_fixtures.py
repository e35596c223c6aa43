#!/usr/bin/env python3
"""Writes the small ONNX models the KeelONNX tests read, into Tests/KeelONNXTests/Fixtures/.

Each model is built with onnx.helper from values drawn with a fixed seed. Alongside the models:
- expected.json: what the generator wrote (node ops, attributes, initializer values), so the
  tests check the loader against the source of truth rather than against itself;
- <model>_input_0.pb / <model>_output_0.pb: an input and ONNX Runtime's output for it
  (serialized TensorProto), for runtime tests.
- a few deliberately broken models for the error tests.

Run from the repository root: python3 tools/gen_onnx_fixtures.py
"""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "KeelONNXTests", "Fixtures")
rng = np.random.default_rng(20261129)
expected = {}


def weights(name, *shape):
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.5, name)


def summarize(tensor):
    """Type, the first values and the sum of an initializer (enough to catch misread bytes)."""
    values = numpy_helper.to_array(tensor, base_dir=OUT).astype(np.float64).ravel()
    return {"dtype": TensorProto.DataType.Name(tensor.data_type), "dims": list(tensor.dims),
            "first": values[:6].tolist(), "sum": float(values.sum()), "count": int(values.size)}


def describe(model):
    """The facts the tests compare with: ops, names, attributes and initializer values."""
    graph = model.graph
    return {
        "ir_version": model.ir_version,
        "opset": {o.domain: o.version for o in model.opset_import},
        "nodes": [
            {"name": n.name, "op": n.op_type, "inputs": list(n.input), "outputs": list(n.output),
             "attributes": {a.name: helper.get_attribute_value(a) if a.type in (1, 2, 6, 7)
                            else helper.get_attribute_value(a).decode() if a.type == 3 else None
                            for a in n.attribute}}
            for n in graph.node
        ],
        "initializers": {
            t.name: summarize(t) for t in graph.initializer
        },
        "inputs": [{"name": i.name, "dims": [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]}
                   for i in graph.input],
        "outputs": [o.name for o in graph.output],
    }


def save(name, model, feed=None, external=False):
    path = os.path.join(OUT, name + ".onnx")
    if external:
        data_path = os.path.join(OUT, name + ".bin")
        if os.path.exists(data_path):
            os.remove(data_path)  # onnx appends to an existing data file
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=name + ".bin", size_threshold=0)
        model = onnx.load(path, load_external_data=False)
    else:
        onnx.save_model(model, path)
    onnx.checker.check_model(path)  # by path, so external data resolves beside the model
    entry = describe(model)
    if feed is not None:
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        outputs = session.run(None, feed)
        for index, (key, value) in enumerate(feed.items()):
            onnx.save_tensor(numpy_helper.from_array(value, key), os.path.join(OUT, f"{name}_input_{index}.pb"))
        for index, value in enumerate(outputs):
            onnx.save_tensor(numpy_helper.from_array(value, entry["outputs"][index]),
                             os.path.join(OUT, f"{name}_output_{index}.pb"))
        entry["output_sample"] = outputs[0].ravel()[:8].astype(np.float64).tolist()
        entry["output_shape"] = list(outputs[0].shape)
    expected[name] = entry


def cnn():
    """conv+relu+pool+flatten+gemm over an NCHW image with a symbolic batch."""
    nodes = [
        helper.make_node("Conv", ["input", "conv1.weight", "conv1.bias"], ["conv1_out"], name="conv1",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Relu", ["conv1_out"], ["relu1_out"], name="relu1"),
        helper.make_node("MaxPool", ["relu1_out"], ["pool1_out"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pool1_out"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5])],
        [weights("conv1.weight", 4, 3, 3, 3), weights("conv1.bias", 4), weights("fc.weight", 5, 64), weights("fc.bias", 5)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="keel-fixtures")
    model.ir_version = 8
    save("cnn", model, {"input": rng.standard_normal((2, 3, 8, 8)).astype(np.float32)})

    # The same network with a frozen backbone: training information whose update bindings
    # name only the classifier's weights.
    training = model.training_info.add()
    for key in ["fc.weight", "fc.bias"]:
        binding = training.update_binding.add()
        binding.key, binding.value = key, key + "_updated"
    with open(os.path.join(OUT, "cnn_frozen.onnx"), "wb") as file:
        file.write(model.SerializeToString())


def external():
    """Dense layer whose weights live in external.bin beside the model."""
    nodes = [
        helper.make_node("MatMul", ["x", "dense/kernel"], ["mm"], name="dense/MatMul"),
        helper.make_node("Add", ["mm", "dense/bias"], ["y"], name="dense/BiasAdd"),
    ]
    graph = helper.make_graph(
        nodes, "external",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [weights("dense/kernel", 4, 3), weights("dense/bias", 3)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="keel-fixtures")
    model.ir_version = 8
    save("external", model, {"x": rng.standard_normal((2, 4)).astype(np.float32)}, external=True)


def tf2onnx_style(opset):
    """What tf2onnx writes for a small Keras model: NHWC input and Transposes around Conv,
    BatchNormalization folded into Mul+Add, Flatten through Shape/Gather/Unsqueeze/Concat/
    Reshape, Dense as MatMul+Add, then Softmax."""
    prefix = "model/"
    unsqueeze = (helper.make_node("Unsqueeze", ["batch_dim", "axes0"], ["batch_vec"], name=prefix + "flatten/Unsqueeze")
                 if opset >= 13 else
                 helper.make_node("Unsqueeze", ["batch_dim"], ["batch_vec"], name=prefix + "flatten/Unsqueeze", axes=[0]))
    nodes = [
        helper.make_node("Transpose", ["input_1"], ["nchw"], name=prefix + "conv2d/Conv2D__6", perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "conv2d/kernel", "conv2d/bias"], ["conv"], name=prefix + "conv2d/Conv2D",
                         kernel_shape=[3, 3], auto_pad="SAME_UPPER", strides=[1, 1], dilations=[1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"], name=prefix + "conv2d/Relu"),
        helper.make_node("Transpose", ["relu"], ["nhwc"], name=prefix + "conv2d/Relu__8", perm=[0, 2, 3, 1]),
        helper.make_node("Mul", ["nhwc", "bn/scale"], ["bn_mul"], name=prefix + "batch_normalization/mul"),
        helper.make_node("Add", ["bn_mul", "bn/offset"], ["bn_out"], name=prefix + "batch_normalization/add"),
        helper.make_node("Shape", ["bn_out"], ["shape"], name=prefix + "flatten/Shape"),
        helper.make_node("Gather", ["shape", "zero"], ["batch_dim"], name=prefix + "flatten/strided_slice", axis=0),
        unsqueeze,
        helper.make_node("Concat", ["batch_vec", "minus_one"], ["target"], name=prefix + "flatten/Reshape/shape", axis=0),
        helper.make_node("Reshape", ["bn_out", "target"], ["flat"], name=prefix + "flatten/Reshape"),
        helper.make_node("MatMul", ["flat", "dense/kernel"], ["dense_mm"], name=prefix + "dense/MatMul"),
        helper.make_node("Add", ["dense_mm", "dense/bias"], ["dense_out"], name=prefix + "dense/BiasAdd"),
        helper.make_node("Softmax", ["dense_out"], ["probs"], name=prefix + "dense/Softmax",
                         **({"axis": 1} if opset < 13 else {})),
    ]
    initializers = [
        weights("conv2d/kernel", 4, 3, 3, 3), weights("conv2d/bias", 4),
        numpy_helper.from_array((rng.random(4) + 0.5).astype(np.float32), "bn/scale"),
        weights("bn/offset", 4),
        numpy_helper.from_array(np.array(0, dtype=np.int64), "zero"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "minus_one"),
        weights("dense/kernel", 256, 5), weights("dense/bias", 5),
    ]
    if opset >= 13:
        initializers.append(numpy_helper.from_array(np.array([0], dtype=np.int64), "axes0"))
    graph = helper.make_graph(
        nodes, "tf2onnx_style",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["unk__42", 8, 8, 3])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["unk__42", 5])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="tf2onnx")
    model.ir_version = 7 if opset < 13 else 8
    name = "tf2onnx_style" if opset >= 13 else f"tf2onnx_style_opset{opset}"
    save(name, model, {"input_1": rng.standard_normal((2, 8, 8, 3)).astype(np.float32)})


def vit_head_style():
    """The ViT head as tf2onnx writes it: 1x1 Conv between Transposes, Keras Reshape((-1, C))
    as Shape -> Cast(int32) -> Slice -> Squeeze -> Unsqueeze -> Concat -> Cast(int64) ->
    Reshape, and LayerNormalization decomposed into ReduceMean/Sub/Pow/Sqrt/Div/Mul/Add."""
    p = "model/"
    channels = 16
    nodes = [
        helper.make_node("Transpose", ["image"], ["nchw"], name=p + "conv/Conv2D__5", perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "conv/kernel", "conv/bias"], ["conv"], name=p + "conv/Conv2D",
                         kernel_shape=[1, 1], auto_pad="SAME_UPPER"),
        helper.make_node("Transpose", ["conv"], ["features"], name=p + "conv/Conv2D__7", perm=[0, 2, 3, 1]),
        helper.make_node("Shape", ["features"], ["shape64"], name=p + "reshape/Shape"),
        helper.make_node("Cast", ["shape64"], ["shape32"], name=p + "reshape/Shape__9", to=TensorProto.INT32),
        helper.make_node("Slice", ["shape32", "begin", "end", "slice_axis"], ["batch1"], name=p + "reshape/strided_slice"),
        helper.make_node("Squeeze", ["batch1", "axis0"], ["batch"], name=p + "reshape/strided_slice__11"),
        helper.make_node("Unsqueeze", ["batch", "axis0"], ["batch_vec"], name=p + "reshape/Reshape/shape_Unsqueeze__13"),
        helper.make_node("Concat", ["batch_vec", "minus_one32", "channels32"], ["target32"], name=p + "reshape/Reshape/shape", axis=0),
        helper.make_node("Cast", ["target32"], ["target"], name=p + "reshape/Reshape__15", to=TensorProto.INT64),
        helper.make_node("Reshape", ["features", "target"], ["tokens"], name=p + "reshape/Reshape"),
        helper.make_node("ReduceMean", ["tokens"], ["mean"], name=p + "layer_norm/moments/mean", axes=[-1], keepdims=1),
        helper.make_node("Sub", ["tokens", "mean"], ["centered"], name=p + "layer_norm/moments/sub"),
        helper.make_node("Pow", ["centered", "two"], ["squared"], name=p + "layer_norm/moments/pow"),
        helper.make_node("ReduceMean", ["squared"], ["variance"], name=p + "layer_norm/moments/variance", axes=[-1], keepdims=1),
        helper.make_node("Add", ["variance", "epsilon"], ["shifted"], name=p + "layer_norm/add"),
        helper.make_node("Sqrt", ["shifted"], ["std"], name=p + "layer_norm/Sqrt"),
        helper.make_node("Div", ["centered", "std"], ["normalized"], name=p + "layer_norm/truediv"),
        helper.make_node("Mul", ["normalized", "layer_norm/gamma"], ["scaled"], name=p + "layer_norm/mul"),
        helper.make_node("Add", ["scaled", "layer_norm/beta"], ["output"], name=p + "layer_norm/add_1"),
    ]
    initializers = [
        weights("conv/kernel", channels, 8, 1, 1), weights("conv/bias", channels),
        numpy_helper.from_array(np.array([0], dtype=np.int32), "begin"),
        numpy_helper.from_array(np.array([1], dtype=np.int32), "end"),
        numpy_helper.from_array(np.array([0], dtype=np.int32), "slice_axis"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"),
        numpy_helper.from_array(np.array([-1], dtype=np.int32), "minus_one32"),
        numpy_helper.from_array(np.array([channels], dtype=np.int32), "channels32"),
        numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two"),
        numpy_helper.from_array(np.array(0.001, dtype=np.float32), "epsilon"),
        numpy_helper.from_array((rng.random(channels) + 0.5).astype(np.float32), "layer_norm/gamma"),
        weights("layer_norm/beta", channels),
    ]
    graph = helper.make_graph(
        nodes, "vit_head_style",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["unk__7", 7, 7, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["unk__7", 49, channels])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="tf2onnx")
    model.ir_version = 8
    save("vit_head_style", model, {"image": rng.standard_normal((2, 7, 7, 8)).astype(np.float32)})


def opset_variants(opset):
    """The same small computation at opset 9 (Slice/Pad/Clip/Squeeze/ReduceMean/Dropout take
    attributes, Softmax coerces to 2-D) and at opset 18 (they take constant inputs)."""
    old = opset < 10
    nodes, initializers = [], []

    def const(name, values, dtype=np.int64):
        initializers.append(numpy_helper.from_array(np.array(values, dtype=dtype), name))
        return name

    def node(op, inputs, output, name, attributes=None, constant_inputs=()):
        if old:
            nodes.append(helper.make_node(op, inputs, [output], name=name, **(attributes or {})))
        else:
            extra = [const(name + "/" + key, value, dtype) if key else "" for key, value, dtype in constant_inputs]
            while extra and extra[-1] == "":
                extra.pop()
            nodes.append(helper.make_node(op, inputs + extra, [output], name=name))

    node("Slice", ["x"], "sliced", "slice", {"starts": [1], "ends": [3], "axes": [1]},
         [("starts", [1], np.int64), ("ends", [3], np.int64), ("axes", [1], np.int64)])
    node("Pad", ["sliced"], "padded", "pad", {"pads": [0, 0, 1, 0, 0, 1], "value": 0.5},
         [("pads", [0, 0, 1, 0, 0, 1], np.int64), ("value", 0.5, np.float32)])
    node("Clip", ["padded"], "clipped", "clip", {"min": -1.0, "max": 1.0},
         [("min", -1.0, np.float32), ("max", 1.0, np.float32)])
    node("Unsqueeze", ["clipped"], "unsqueezed", "unsqueeze", {"axes": [1]}, [("axes", [1], np.int64)])
    node("Squeeze", ["unsqueezed"], "squeezed", "squeeze", {"axes": [1]}, [("axes", [1], np.int64)])
    node("Dropout", ["squeezed"], "dropped", "dropout", {"ratio": 0.25}, [("ratio", 0.25, np.float32)])
    node("ReduceMean", ["dropped"], "mean", "reduce_mean", {"axes": [2], "keepdims": 1}, [("axes", [2], np.int64)])
    nodes.append(helper.make_node("Reshape", ["mean", const("target", [0, 2])], ["flat"], name="reshape"))
    nodes.append(helper.make_node("Softmax", ["flat"], ["probs"], name="softmax_2d", **({"axis": 1} if old else {})))
    nodes.append(helper.make_node("Softmax", ["dropped"], ["probs_3d"], name="softmax_3d", axis=1))
    nodes.append(helper.make_node("Gemm", ["probs", const("gemm/b", rng.standard_normal((2, 3)), np.float32),
                                           const("gemm/c", rng.standard_normal(3), np.float32)],
                                  ["gemm"], name="gemm", alpha=0.5, beta=2.0))
    graph = helper.make_graph(
        nodes, "opset_variants",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 6])],
        [helper.make_tensor_value_info("gemm", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("probs_3d", TensorProto.FLOAT, ["N", 2, 8])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="keel-fixtures")
    model.ir_version = 4 if old else 8
    save(f"ops_opset{opset}", model, {"x": rng.standard_normal((2, 4, 6)).astype(np.float32)})


def typed_fields():
    """Initializers stored in the typed fields instead of raw_data, one per supported dtype."""
    tensors = [
        helper.make_tensor("f32", TensorProto.FLOAT, [2, 2], [1.5, -2.0, 0.25, 8.0]),
        helper.make_tensor("f64", TensorProto.DOUBLE, [3], [1.0, -0.5, 1e10]),
        helper.make_tensor("i32", TensorProto.INT32, [2], [7, -9]),
        helper.make_tensor("i64", TensorProto.INT64, [2], [1 << 40, -3]),
        helper.make_tensor("b", TensorProto.BOOL, [3], [True, False, True]),
        helper.make_tensor("f16", TensorProto.FLOAT16, [2], [0.5, -3.0]),
    ]
    nodes = [helper.make_node("Identity", [t.name], [t.name + "_out"], name="id_" + t.name) for t in tensors]
    graph = helper.make_graph(nodes, "typed", [],
                              [helper.make_tensor_value_info(t.name + "_out", t.data_type, list(t.dims)) for t in tensors],
                              tensors)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save("typed_fields", model)


def unaligned_external():
    """External data at an offset that is not a multiple of 4 and without a length entry: the
    reader must copy it to aligned memory rather than view it."""
    with open(os.path.join(OUT, "unaligned.bin"), "wb") as file:
        file.write(b"\x00\x00" + np.array([1, 2, 3, 4], dtype="<f4").tobytes())
    tensor = helper.make_tensor("w", TensorProto.FLOAT, [4], [0, 0, 0, 0])
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in [("location", "unaligned.bin"), ("offset", "2")]:
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"], name="adder")], "unaligned",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], [tensor])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save("unaligned_external", model, {"x": np.ones((1, 4), dtype=np.float32)})


def broken():
    """Models the importer must refuse with a clear error."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])

    def model(nodes, initializers=(), opset=13, inputs=(x,)):
        graph = helper.make_graph(nodes, "broken", list(inputs), [y], list(initializers))
        result = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        result.ir_version = 8
        return result

    def write(name, proto):
        with open(os.path.join(OUT, name + ".onnx"), "wb") as file:
            file.write(proto.SerializeToString())

    write("unknown_op", model([helper.make_node("FancyOp", ["x"], ["y"], name="mystery")]))
    write("opset_too_new", model([helper.make_node("Relu", ["x"], ["y"], name="relu")], opset=99))
    write("undefined_input", model([helper.make_node("Add", ["x", "nowhere"], ["y"], name="adder")]))
    write("bad_dtype", model([helper.make_node("Add", ["x", "q"], ["y"], name="adder")],
                             [helper.make_tensor("q", TensorProto.UINT8, [4], [1, 2, 3, 4])]))
    for name, location, offset in [("missing_external", "no_such_file.bin", 0),
                                   ("external_out_of_bounds", "external.bin", 1 << 20),
                                   ("external_escape", "../external.bin", 0)]:
        tensor = helper.make_tensor("w", TensorProto.FLOAT, [4], [0, 0, 0, 0])
        tensor.ClearField("float_data")
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in [("location", location), ("offset", str(offset)), ("length", "16")]:
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        write(name, model([helper.make_node("Add", ["x", "w"], ["y"], name="adder")], [tensor]))


def main():
    os.makedirs(OUT, exist_ok=True)
    cnn()
    external()
    tf2onnx_style(13)
    tf2onnx_style(11)
    opset_variants(9)
    opset_variants(18)
    vit_head_style()
    typed_fields()
    unaligned_external()
    broken()
    with open(os.path.join(OUT, "expected.json"), "w") as file:
        json.dump(expected, file, indent=1, sort_keys=True)
        file.write("\n")


if __name__ == "__main__":
    main()
