#!/usr/bin/env python3
"""NaN and infinity references for every ONNX op Keel imports (issue 16, "NaN like ONNX Runtime").

Each case is a one- or two-node ONNX model whose input holds NaN, +inf and -inf among ordinary
values; ONNX Runtime computes the expected output. Written to Tests/KeelTests/Fixtures/nonfinite/:
<case>.onnx, <case>.in.npy, <case>.out.npy and manifest.json (case, op, reference, note).

Where ONNX Runtime has no consistent rule the reference is NumPy's instead, and the manifest says
why: its MaxPool and GlobalMaxPool return NaN only when the NaN is the last value their kernel
scans in a window (a NaN elsewhere is dropped), so Keel propagates any NaN in a window, as NumPy,
IEEE 754-2019 maximum and the ONNX reference implementation do. Both keep ONNX Runtime's floor:
a window of -inf pools to the lowest finite float.

Usage: tools/gen_nonfinite_fixtures.sh   (or PYTHON=/path/to/python tools/gen_nonfinite_fixtures.py)
"""
import json
import os
import shutil

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "KeelTests", "Fixtures", "nonfinite")
OPSET = 20
LOWEST = np.float32(-3.4028234663852886e38)


def nonfinite_input(shape, seed):
    """Uniform values in [-2, 2) with NaN, +inf and -inf at fixed places."""
    values = np.random.default_rng(seed).uniform(-2, 2, size=shape).astype(np.float32)
    flat = values.reshape(-1)
    flat[5], flat[len(flat) // 2 + 3], flat[-4] = np.nan, np.inf, -np.inf
    return values


def run_ort(model, x):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def model_for(nodes, shape, constants):
    initializers = [numpy_helper.from_array(value, name) for name, value in constants.items()]
    graph = helper.make_graph(nodes, "case", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    return model


def pooled_max(x, kernel, stride):
    """NaN-propagating max pooling (NCHW), floored at the lowest finite float like ONNX Runtime."""
    n, c, h, w = x.shape
    out_h, out_w = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    y = np.empty((n, c, out_h, out_w), np.float32)
    for i in range(out_h):
        for j in range(out_w):
            window = x[:, :, i * stride:i * stride + kernel, j * stride:j * stride + kernel]
            y[:, :, i, j] = np.max(window, axis=(2, 3))
    return np.where(np.isnan(y), y, np.maximum(y, LOWEST)).astype(np.float32)


def f32(*shape, seed=1, low=-1.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(np.float32)


SHAPE = [1, 2, 4, 4]
NUMPY_REASON = "ONNX Runtime keeps a NaN only when it is the last value scanned in a window"
cases = []


def case(name, op, nodes, constants=None, shape=SHAPE, numpy_reference=None):
    cases.append((name, op, nodes, constants or {}, shape, numpy_reference))


def unary(op, **attributes):
    case(op.lower(), op, [helper.make_node(op, ["x"], ["y"], **attributes)])


for op in ["Relu", "Elu", "Selu", "Sigmoid", "Tanh", "Erf", "Softplus", "HardSigmoid", "HardSwish", "Sqrt", "Exp",
           "Log", "Neg", "Abs", "Gelu", "Identity"]:
    unary(op)
unary("LeakyRelu", alpha=0.1)
case("dropout", "Dropout", [helper.make_node("Dropout", ["x"], ["y"])])
case("cast", "Cast", [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)])
case("clip", "Clip", [helper.make_node("Clip", ["x", "low", "high"], ["y"])],
     {"low": np.array(0, np.float32), "high": np.array(6, np.float32)})
case("prelu", "PRelu", [helper.make_node("PRelu", ["x", "slope"], ["y"])], {"slope": f32(2, 1, 1, seed=2)})
other = nonfinite_input(SHAPE, 9)
for op in ["Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean"]:
    case(op.lower(), op, [helper.make_node(op, ["x", "b"], ["y"])], {"b": other})
case("pow", "Pow", [helper.make_node("Pow", ["x", "b"], ["y"])], {"b": np.array([2.0], np.float32)})
case("softmax", "Softmax", [helper.make_node("Softmax", ["x"], ["y"], axis=1)])
case("logsoftmax", "LogSoftmax", [helper.make_node("LogSoftmax", ["x"], ["y"], axis=-1)])
for op in ["ReduceMean", "ReduceSum"]:
    case(op.lower(), op, [helper.make_node(op, ["x", "axes"], ["y"], keepdims=1)], {"axes": np.array([3], np.int64)})
case("maxpool", "MaxPool", [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
     numpy_reference=lambda x: pooled_max(x, 2, 2))
case("maxpool_3x3", "MaxPool", [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[1, 1])],
     numpy_reference=lambda x: pooled_max(x, 3, 1))
case("globalmaxpool", "GlobalMaxPool", [helper.make_node("GlobalMaxPool", ["x"], ["y"])],
     numpy_reference=lambda x: pooled_max(x, 4, 1))
case("averagepool", "AveragePool", [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])])
case("globalaveragepool", "GlobalAveragePool", [helper.make_node("GlobalAveragePool", ["x"], ["y"])])
case("conv", "Conv", [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])],
     {"w": f32(3, 2, 3, 3, seed=3), "b": f32(3, seed=4)})
case("conv_relu", "Conv", [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                           helper.make_node("Relu", ["c"], ["y"])], {"w": f32(3, 2, 3, 3, seed=5)})
case("conv_relu_maxpool", "Conv", [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                                   helper.make_node("Relu", ["c"], ["r"]),
                                   helper.make_node("MaxPool", ["r"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
     {"w": f32(3, 2, 3, 3, seed=6)})
case("convtranspose", "ConvTranspose", [helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])],
     {"w": f32(2, 3, 2, 2, seed=7)})
case("batchnormalization", "BatchNormalization",
     [helper.make_node("BatchNormalization", ["x", "g", "beta", "mean", "var"], ["y"])],
     {"g": f32(2, seed=8), "beta": f32(2, seed=9), "mean": f32(2, seed=10), "var": f32(2, seed=11, low=0.5, high=2)})
case("instancenormalization", "InstanceNormalization", [helper.make_node("InstanceNormalization", ["x", "g", "beta"], ["y"])],
     {"g": f32(2, seed=12), "beta": f32(2, seed=13)})
case("layernormalization", "LayerNormalization", [helper.make_node("LayerNormalization", ["x", "g", "beta"], ["y"], axis=-1)],
     {"g": f32(4, seed=14), "beta": f32(4, seed=15)})
case("lrn", "LRN", [helper.make_node("LRN", ["x"], ["y"], size=3)])
case("matmul", "MatMul", [helper.make_node("MatMul", ["x", "w"], ["y"])], {"w": f32(4, 3, seed=16)})
case("gemm", "Gemm", [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "w", "b"], ["y"], transB=1)],
     {"w": f32(5, 32, seed=17), "b": f32(5, seed=18)})
case("flatten", "Flatten", [helper.make_node("Flatten", ["x"], ["y"])])
case("reshape", "Reshape", [helper.make_node("Reshape", ["x", "s"], ["y"])], {"s": np.array([1, 8, 4], np.int64)})
case("transpose", "Transpose", [helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])])
case("concat", "Concat", [helper.make_node("Concat", ["x", "x"], ["y"], axis=1)])
case("slice", "Slice", [helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"])],
     {"starts": np.array([1], np.int64), "ends": np.array([4], np.int64), "axes": np.array([2], np.int64)})
case("pad", "Pad", [helper.make_node("Pad", ["x", "pads"], ["y"])], {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)})
case("squeeze", "Squeeze", [helper.make_node("Squeeze", ["x", "axes"], ["y"])], {"axes": np.array([0], np.int64)})
case("unsqueeze", "Unsqueeze", [helper.make_node("Unsqueeze", ["x", "axes"], ["y"])], {"axes": np.array([1], np.int64)})
case("gather", "Gather", [helper.make_node("Gather", ["x", "i"], ["y"], axis=3)], {"i": np.array([3, 0, 1], np.int64)})
case("split", "Split", [helper.make_node("Split", ["x"], ["y", "z"], axis=1, num_outputs=2)])
case("expand", "Expand", [helper.make_node("Expand", ["x", "s"], ["y"])], {"s": np.array([2, 2, 4, 4], np.int64)})
case("tile", "Tile", [helper.make_node("Tile", ["x", "r"], ["y"])], {"r": np.array([1, 1, 2, 1], np.int64)})
case("resize", "Resize", [helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest")],
     {"scales": np.array([1, 1, 2, 2], np.float32)})
case("resize_linear", "Resize", [helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear")],
     {"scales": np.array([1, 1, 2, 2], np.float32)})
case("spacetodepth", "SpaceToDepth", [helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=2)])
case("depthtospace", "DepthToSpace", [helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=2)], shape=[1, 4, 2, 2])


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    manifest = []
    for index, (name, op, nodes, constants, shape, numpy_reference) in enumerate(cases):
        x = nonfinite_input(shape, index)
        model = model_for(nodes, shape, constants)
        ort_output = run_ort(model, x)
        expected = numpy_reference(x) if numpy_reference else ort_output
        entry = {"case": name, "op": op, "reference": "numpy" if numpy_reference else "onnxruntime"}
        if numpy_reference:
            same = np.array_equal(expected, ort_output, equal_nan=True)
            entry["note"] = NUMPY_REASON + ("" if not same else "; here both agree")
        with open(os.path.join(OUT, name + ".onnx"), "wb") as handle:
            handle.write(model.SerializeToString())
        np.save(os.path.join(OUT, name + ".in.npy"), x)
        np.save(os.path.join(OUT, name + ".out.npy"), expected.astype(np.float32))
        manifest.append(entry)
    with open(os.path.join(OUT, "manifest.json"), "w") as handle:
        json.dump({"cases": manifest}, handle, indent=1)
        handle.write("\n")
    print(f"{len(manifest)} cases -> {OUT}")


if __name__ == "__main__":
    main()
