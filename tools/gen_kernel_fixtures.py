#!/usr/bin/env python3
"""Generate reference fixtures for the KeelKernels tests.

Each case is a tiny ONNX model (built with onnx.helper) run by ONNX Runtime on seeded random
inputs. Inputs and outputs are written as little-endian float32 (indices as int64) `.bin` files
into Tests/KeelKernelsTests/Fixtures/, described by `manifest.json` (shapes, attributes, layout).

ONNX is NCHW with OIHW weights; NHWC cases are produced by transposing inputs, weights and
outputs in numpy, so the Swift side sees the layout it is asked to compute.

Usage: python3 tools/gen_kernel_fixtures.py   (deterministic; rerun after adding cases)
"""
import functools
import json
import os
import shutil
import zlib

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "KeelKernelsTests", "Fixtures")
OPSET = 20

rng = np.random.default_rng(0)
cases = []


def seeded(case):
    """Seeds the generator from the case's name, so adding a case leaves the others' data unchanged."""
    @functools.wraps(case)
    def wrapper(name, *args, **kwargs):
        global rng
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        return case(name, *args, **kwargs)
    return wrapper


def rand(*shape, low=-1.0, high=1.0):
    return rng.uniform(low, high, size=shape).astype(np.float32)


def run(nodes, feeds, constants, output_names):
    """Builds a graph from nodes, feeding `feeds` (name -> array) and baking `constants` in."""
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT if a.dtype == np.float32 else TensorProto.INT64,
                                            list(a.shape)) for name, a in feeds.items()]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in output_names]
    initializers = [numpy_helper.from_array(a, name) for name, a in constants.items()]
    graph = helper.make_graph(nodes, "case", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3  # ceil-mode pooling cases make ONNX shape inference disagree with ORT
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(output_names, feeds)


def save(name, op, attrs, inputs, outputs):
    """inputs/outputs: ordered lists of (tensor name, array)."""
    def write(tensors):
        described = []
        for tensor_name, array in tensors:
            file = f"{name}.{tensor_name}.bin"
            if array.dtype == np.int64:
                array.astype("<i8").tofile(os.path.join(OUT, file))
                dtype = "i64"
            else:
                np.ascontiguousarray(array, dtype="<f4").tofile(os.path.join(OUT, file))
                dtype = "f32"
            described.append({"name": tensor_name, "shape": list(array.shape), "dtype": dtype, "file": file})
        return described
    cases.append({"name": name, "op": op, "attrs": attrs, "inputs": write(inputs), "outputs": write(outputs)})


ACTIVATION_NODES = {
    "none": lambda x, y: [helper.make_node("Identity", [x], [y])],
    "relu": lambda x, y: [helper.make_node("Relu", [x], [y])],
    "leaky_relu": lambda x, y: [helper.make_node("LeakyRelu", [x], [y], alpha=0.1)],
    "clip": lambda x, y: [helper.make_node("Clip", [x, "clip_min", "clip_max"], [y])],
    "sigmoid": lambda x, y: [helper.make_node("Sigmoid", [x], [y])],
    "tanh": lambda x, y: [helper.make_node("Tanh", [x], [y])],
}
CLIP_CONSTANTS = {"clip_min": np.array(0.0, np.float32), "clip_max": np.array(0.5, np.float32)}


def activation_attrs(activation):
    attrs = {"activation": activation}
    if activation == "leaky_relu":
        attrs["alpha"] = 0.1
    if activation == "clip":
        attrs["min"], attrs["max"] = 0.0, 0.5
    return attrs


@seeded
def conv_case(name, layout, batch, cin, h, w, cout, kernel, strides=(1, 1), dilations=(1, 1),
              pads=(0, 0, 0, 0), groups=1, activation="none", bias=True):
    x = rand(batch, cin, h, w)
    weights = rand(cout, cin // groups, kernel[0], kernel[1], low=-0.5, high=0.5)
    b = rand(cout)
    conv_inputs = ["x", "w", "b"] if bias else ["x", "w"]
    nodes = [helper.make_node("Conv", conv_inputs, ["conv"], kernel_shape=list(kernel), strides=list(strides),
                              dilations=list(dilations), pads=list(pads), group=groups)]
    nodes += ACTIVATION_NODES[activation]("conv", "y")
    constants = {"w": weights, "b": b} if bias else {"w": weights}
    if activation == "clip":
        constants.update(CLIP_CONSTANTS)
    (y,) = run(nodes, {"x": x}, constants, ["y"])
    attrs = {"layout": layout, "kernel": list(kernel), "strides": list(strides), "dilations": list(dilations),
             "pads": list(pads), "groups": groups, **activation_attrs(activation)}
    if layout == "nhwc":
        inputs = [("x", x.transpose(0, 2, 3, 1)), ("kernel", weights.transpose(2, 3, 1, 0))]
        output = y.transpose(0, 2, 3, 1)
    else:
        inputs = [("x", x), ("kernel", weights)]
        output = y
    if bias:
        inputs.append(("bias", b))
    save(name, "conv2d", attrs, inputs, [("y", output)])


@seeded
def dense_case(name, rows, fin, fout, layout, activation="none", bias=True):
    x = rand(rows, fin)
    kernel = rand(fin, fout) if layout == "in_out" else rand(fout, fin)
    b = rand(fout)
    inputs = ["x", "kernel", "bias"] if bias else ["x", "kernel"]
    nodes = [helper.make_node("Gemm", inputs, ["gemm"], transB=1 if layout == "out_in" else 0)]
    nodes += ACTIVATION_NODES[activation]("gemm", "y")
    constants = {"kernel": kernel, "bias": b} if bias else {"kernel": kernel}
    if activation == "clip":
        constants.update(CLIP_CONSTANTS)
    (y,) = run(nodes, {"x": x}, constants, ["y"])
    tensors = [("x", x), ("kernel", kernel)] + ([("bias", b)] if bias else [])
    save(name, "dense", {"weight_layout": layout, **activation_attrs(activation)}, tensors, [("y", y)])


@seeded
def matmul_case(name, a_shape, b_shape):
    a, b = rand(*a_shape), rand(*b_shape)
    (y,) = run([helper.make_node("MatMul", ["a", "b"], ["y"])], {"a": a, "b": b}, {}, ["y"])
    save(name, "matmul", {}, [("a", a), ("b", b)], [("y", y)])


@seeded
def pool_case(name, kind, layout, shape, window, strides, pads=(0, 0, 0, 0), ceil_mode=0, count_include_pad=0,
              dilations=(1, 1)):
    x = rand(*shape)
    attrs = dict(kernel_shape=list(window), strides=list(strides), pads=list(pads), ceil_mode=ceil_mode)
    if dilations != (1, 1):
        attrs["dilations"] = list(dilations)
    if kind == "avg":
        attrs["count_include_pad"] = count_include_pad
    node = helper.make_node("MaxPool" if kind == "max" else "AveragePool", ["x"], ["y"], **attrs)
    (y,) = run([node], {"x": x}, {}, ["y"])
    meta = {"layout": layout, "kind": kind, "window": list(window), "strides": list(strides), "pads": list(pads),
            "ceil_mode": ceil_mode, "count_include_pad": count_include_pad, "dilations": list(dilations)}
    if layout == "nhwc":
        x, y = x.transpose(0, 2, 3, 1), y.transpose(0, 2, 3, 1)
    save(name, "pool2d", meta, [("x", x)], [("y", y)])


@seeded
def global_pool_case(name, kind, layout, shape):
    x = rand(*shape)
    op = "GlobalMaxPool" if kind == "max" else "GlobalAveragePool"
    (y,) = run([helper.make_node(op, ["x"], ["y"])], {"x": x}, {}, ["y"])
    y = y.reshape(shape[0], shape[1])
    if layout == "nhwc":
        x = x.transpose(0, 2, 3, 1)
    save(name, "global_pool2d", {"layout": layout, "kind": kind}, [("x", x)], [("y", y)])


@seeded
def batch_norm_case(name, shape, epsilon):
    x = rand(*shape, low=-2, high=2)
    channels = shape[1]
    gamma, beta, mean = rand(channels), rand(channels), rand(channels)
    variance = rand(channels, low=0.1, high=2.0)
    node = helper.make_node("BatchNormalization", ["x", "gamma", "beta", "mean", "variance"], ["y"], epsilon=epsilon)
    (y,) = run([node], {"x": x}, {"gamma": gamma, "beta": beta, "mean": mean, "variance": variance}, ["y"])
    save(name, "batch_norm", {"epsilon": epsilon},
         [("x", x), ("gamma", gamma), ("beta", beta), ("mean", mean), ("variance", variance)], [("y", y)])


@seeded
def layer_norm_case(name, shape, axis, epsilon, with_beta):
    x = rand(*shape, low=-2, high=2)
    norm_shape = list(shape[axis:])
    gamma = rand(*norm_shape)
    beta = rand(*norm_shape)
    inputs = ["x", "gamma", "beta"] if with_beta else ["x", "gamma"]
    node = helper.make_node("LayerNormalization", inputs, ["y"], axis=axis, epsilon=epsilon)
    constants = {"gamma": gamma, "beta": beta} if with_beta else {"gamma": gamma}
    (y,) = run([node], {"x": x}, constants, ["y"])
    tensors = [("x", x), ("gamma", gamma)] + ([("beta", beta)] if with_beta else [])
    save(name, "layer_norm", {"axis": axis, "epsilon": epsilon}, tensors, [("y", y)])


@seeded
def softmax_case(name, shape, axis, log=False):
    x = rand(*shape, low=-4, high=4)
    node = helper.make_node("LogSoftmax" if log else "Softmax", ["x"], ["y"], axis=axis)
    (y,) = run([node], {"x": x}, {}, ["y"])
    save(name, "log_softmax" if log else "softmax", {"axis": axis}, [("x", x)], [("y", y)])


@seeded
def unary_case(op, nodes, attrs=None, constants=None, positive=False):
    x = rand(3, 17, low=0.05 if positive else -4, high=4)
    (y,) = run(nodes, {"x": x}, constants or {}, ["y"])
    save("unary_" + op, "unary", {"function": op, **(attrs or {})}, [("x", x)], [("y", y)])


@seeded
def binary_case(name, op, a_shape, b_shape, positive_b=False, positive_a=False):
    a = rand(*a_shape, low=0.2 if positive_a else -2, high=2)
    b = rand(*b_shape, low=0.2 if positive_b else -2, high=2)
    (y,) = run([helper.make_node(op, ["a", "b"], ["y"])], {"a": a, "b": b}, {}, ["y"])
    save(name, "binary", {"function": op}, [("a", a), ("b", b)], [("y", y)])


@seeded
def sum_case(name, shapes):
    arrays = [rand(*shape) for shape in shapes]
    names = [f"x{i}" for i in range(len(shapes))]
    (y,) = run([helper.make_node("Sum", names, ["y"])], dict(zip(names, arrays)), {}, ["y"])
    save(name, "sum", {}, list(zip(names, arrays)), [("y", y)])


@seeded
def reduce_case(name, op, shape, axes, keepdims=1):
    x = rand(*shape)
    inputs = ["x", "axes"] if axes is not None else ["x"]
    constants = {"axes": np.array(axes, np.int64)} if axes is not None else {}
    (y,) = run([helper.make_node(op, inputs, ["y"], keepdims=keepdims)], {"x": x}, constants, ["y"])
    save(name, "reduce", {"function": op, "axes": axes if axes is not None else []}, [("x", x)], [("y", y)])


@seeded
def transpose_case(name, shape, perm):
    x = rand(*shape)
    (y,) = run([helper.make_node("Transpose", ["x"], ["y"], perm=perm)], {"x": x}, {}, ["y"])
    save(name, "transpose", {"perm": perm}, [("x", x)], [("y", y)])


@seeded
def concat_case(name, shapes, axis):
    arrays = [rand(*shape) for shape in shapes]
    names = [f"x{i}" for i in range(len(shapes))]
    (y,) = run([helper.make_node("Concat", names, ["y"], axis=axis)], dict(zip(names, arrays)), {}, ["y"])
    save(name, "concat", {"axis": axis}, list(zip(names, arrays)), [("y", y)])


@seeded
def pad_case(name, shape, pads, value):
    x = rand(*shape)
    constants = {"pads": np.array(pads, np.int64), "value": np.array(value, np.float32)}
    (y,) = run([helper.make_node("Pad", ["x", "pads", "value"], ["y"], mode="constant")], {"x": x}, constants, ["y"])
    save(name, "pad", {"pads": pads, "value": value}, [("x", x)], [("y", y)])


@seeded
def slice_case(name, shape, starts, ends, axes, steps):
    x = rand(*shape)
    constants = {"starts": np.array(starts, np.int64), "ends": np.array(ends, np.int64),
                 "axes": np.array(axes, np.int64), "steps": np.array(steps, np.int64)}
    node = helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"])
    (y,) = run([node], {"x": x}, constants, ["y"])
    save(name, "slice", {"starts": starts, "ends": ends, "axes": axes, "steps": steps}, [("x", x)], [("y", y)])


@seeded
def gather_case(name, shape, indices, axis):
    x = rand(*shape)
    idx = np.array(indices, np.int64)
    (y,) = run([helper.make_node("Gather", ["x", "indices"], ["y"], axis=axis)], {"x": x}, {"indices": idx}, ["y"])
    save(name, "gather", {"axis": axis}, [("x", x), ("indices", idx)], [("y", y)])


@seeded
def instance_norm_case(name, layout, shape, epsilon):
    x = rand(*shape, low=-2, high=2)
    gamma, beta = rand(shape[1]), rand(shape[1])
    node = helper.make_node("InstanceNormalization", ["x", "gamma", "beta"], ["y"], epsilon=epsilon)
    (y,) = run([node], {"x": x}, {"gamma": gamma, "beta": beta}, ["y"])
    if layout == "nhwc":
        x, y = x.transpose(0, 2, 3, 1), y.transpose(0, 2, 3, 1)
    save(name, "instance_norm", {"layout": layout, "epsilon": epsilon},
         [("x", x), ("gamma", gamma), ("beta", beta)], [("y", y)])


@seeded
def lrn_case(name, layout, shape, size, alpha, beta, bias):
    x = rand(*shape, low=-3, high=3)
    node = helper.make_node("LRN", ["x"], ["y"], size=size, alpha=alpha, beta=beta, bias=bias)
    (y,) = run([node], {"x": x}, {}, ["y"])
    if layout == "nhwc":
        x, y = x.transpose(0, 2, 3, 1), y.transpose(0, 2, 3, 1)
    save(name, "lrn", {"layout": layout, "size": size, "alpha": alpha, "beta": beta, "bias": bias}, [("x", x)], [("y", y)])


@seeded
def resize_case(name, layout, shape, mode, coordinates="half_pixel", nearest_mode="round_prefer_floor", scales=None,
                sizes=None, antialias=0, roi=None, extrapolation=0.0, cubic_coeff_a=-0.75, exclude_outside=0):
    """Resize of an NCHW `shape` over H and W, by `scales` or `sizes` ([h, w]); NHWC cases transpose."""
    x = rand(*shape)
    attrs = dict(mode=mode, coordinate_transformation_mode=coordinates, nearest_mode=nearest_mode, antialias=antialias,
                 extrapolation_value=extrapolation, axes=[2, 3], cubic_coeff_a=cubic_coeff_a,
                 exclude_outside=exclude_outside)
    constants = {"roi": np.array(roi if roi else [], np.float32),
                 "scales": np.array(scales if scales else [], np.float32)}
    inputs = ["x", "roi", "scales"]
    if sizes:
        constants["sizes"] = np.array(sizes, np.int64)
        inputs.append("sizes")
    node = helper.make_node("Resize", inputs, ["y"], **attrs)
    (y,) = run([node], {"x": x}, constants, ["y"])
    if layout == "nhwc":
        x, y = x.transpose(0, 2, 3, 1), y.transpose(0, 2, 3, 1)
    meta = {"layout": layout, "mode": mode, "coordinates": coordinates, "nearest_mode": nearest_mode,
            "antialias": antialias, "extrapolation_value": extrapolation}
    if scales:
        meta["scales"] = scales
    if roi:
        meta["roi"] = roi
    if mode == "cubic":
        meta["cubic_coeff_a"] = cubic_coeff_a
        meta["exclude_outside"] = exclude_outside
    save(name, "resize", meta, [("x", x)], [("y", y)])


@seeded
def conv_transpose_case(name, shape, out_per_group, kernel, strides, dilations, pads, output_padding, groups=1, bias=True):
    """ConvTranspose on a channels-first `shape` ([N, C, spatial...]) with an ONNX [C, out/groups, k...] kernel."""
    x = rand(*shape)
    w = rand(shape[1], out_per_group, *kernel)
    b = rand(out_per_group * groups)
    inputs = ["x", "w", "b"] if bias else ["x", "w"]
    node = helper.make_node("ConvTranspose", inputs, ["y"], strides=list(strides), dilations=list(dilations),
                            pads=list(pads), output_padding=list(output_padding), group=groups)
    constants = {"w": w, "b": b} if bias else {"w": w}
    (y,) = run([node], {"x": x}, constants, ["y"])
    attrs = {"strides": list(strides), "dilations": list(dilations), "pads": list(pads), "groups": groups}
    save(name, "conv_transpose", attrs, [("x", x), ("w", w)] + ([("b", b)] if bias else []), [("y", y)])


@seeded
def split_case(name, shape, sizes, axis):
    x = rand(*shape)
    names = [f"y{i}" for i in range(len(sizes))]
    node = helper.make_node("Split", ["x", "split"], names, axis=axis)
    outputs = run([node], {"x": x}, {"split": np.array(sizes, np.int64)}, names)
    save(name, "split", {"axis": axis, "sizes": sizes}, [("x", x)], list(zip(names, outputs)))


@seeded
def tile_case(name, shape, repeats):
    x = rand(*shape)
    (y,) = run([helper.make_node("Tile", ["x", "repeats"], ["y"])], {"x": x}, {"repeats": np.array(repeats, np.int64)}, ["y"])
    save(name, "tile", {"repeats": repeats}, [("x", x)], [("y", y)])


@seeded
def block_case(name, op, layout, shape, block, mode=None):
    """DepthToSpace/SpaceToDepth on an NCHW `shape`; NHWC cases transpose input and output."""
    x = rand(*shape)
    attrs = {"blocksize": block}
    if mode is not None:
        attrs["mode"] = mode
    (y,) = run([helper.make_node(op, ["x"], ["y"], **attrs)], {"x": x}, {}, ["y"])
    if layout == "nhwc":
        x, y = x.transpose(0, 2, 3, 1), y.transpose(0, 2, 3, 1)
    save(name, "depth_to_space" if op == "DepthToSpace" else "space_to_depth",
         {"layout": layout, "block_size": block, "mode": mode or "DCR"}, [("x", x)], [("y", y)])


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    open(os.path.join(OUT, ".keep"), "w").close()

    # Convolution: both layouts, awkward channel counts, stride/dilation/groups/asymmetric pads.
    conv_case("conv_nhwc_same3x3_relu", "nhwc", 1, 3, 7, 7, 5, (3, 3), pads=(1, 1, 1, 1), activation="relu")
    conv_case("conv_nchw_same3x3", "nchw", 1, 3, 7, 7, 5, (3, 3), pads=(1, 1, 1, 1))
    conv_case("conv_nhwc_valid_stride2_batch5", "nhwc", 5, 3, 9, 9, 13, (3, 3), strides=(2, 2), activation="leaky_relu")
    conv_case("conv_nchw_valid_stride2_batch5", "nchw", 5, 13, 9, 7, 17, (3, 3), strides=(2, 2), activation="clip")
    conv_case("conv_nhwc_dilation2", "nhwc", 1, 5, 11, 10, 8, (3, 3), dilations=(2, 2), pads=(2, 2, 2, 2),
              activation="sigmoid")
    conv_case("conv_nchw_mixed_stride_dilation", "nchw", 2, 4, 10, 9, 6, (3, 2), strides=(2, 1), dilations=(1, 2),
              pads=(0, 1, 2, 1), activation="tanh")
    conv_case("conv_nhwc_groups4", "nhwc", 2, 8, 6, 6, 12, (3, 3), pads=(1, 1, 1, 1), groups=4)
    conv_case("conv_nchw_depthwise_stride2", "nchw", 1, 6, 7, 7, 6, (3, 3), strides=(2, 2), pads=(1, 1, 1, 1), groups=6)
    conv_case("conv_nhwc_depthwise_multiplier", "nhwc", 1, 5, 6, 7, 10, (3, 3), pads=(1, 1, 1, 1), groups=5)
    conv_case("conv_nhwc_pointwise_relu", "nhwc", 2, 17, 5, 5, 13, (1, 1), activation="relu")
    conv_case("conv_nchw_pointwise_groups2", "nchw", 2, 16, 3, 5, 8, (1, 1), groups=2)
    conv_case("conv_nhwc_1x1_spatial", "nhwc", 5, 7, 1, 1, 5, (1, 1), bias=False)
    conv_transpose_case("conv_transpose_2d_stride_dilation_groups", (2, 4, 3, 4), 3, (3, 2), (2, 3), (2, 1),
                        (1, 0, 2, 1), (1, 2), groups=2)
    conv_transpose_case("conv_transpose_1d_no_bias", (1, 3, 5), 2, (4,), (3,), (1,), (0, 2), (1,), bias=False)
    conv_transpose_case("conv_transpose_3d", (1, 2, 2, 3, 2), 3, (2, 3, 2), (2, 1, 2), (1, 2, 1), (0, 1, 0, 1, 0, 1),
                        (1, 0, 0))
    conv_case("conv_nhwc_3x3_on_1x1_spatial", "nhwc", 1, 3, 1, 1, 4, (3, 3), pads=(1, 1, 1, 1))
    conv_case("conv_nhwc_asymmetric_pads", "nhwc", 1, 3, 6, 5, 4, (2, 3), pads=(0, 1, 1, 2))
    conv_case("conv_nchw_asymmetric_pads", "nchw", 1, 3, 6, 5, 4, (2, 3), pads=(1, 0, 2, 1), bias=False)
    conv_case("conv_nchw_1x1_stride2", "nchw", 1, 5, 7, 7, 3, (1, 1), strides=(2, 2))
    conv_case("conv_nhwc_1x1_stride2_padded", "nhwc", 2, 5, 6, 6, 3, (1, 1), strides=(2, 2), pads=(1, 1, 0, 0))

    # Dense (Gemm) with both weight layouts.
    dense_case("dense_in_out_relu", 5, 17, 13, "in_out", activation="relu")
    dense_case("dense_out_in", 5, 17, 13, "out_in")
    dense_case("dense_single_row_tanh", 1, 64, 10, "in_out", activation="tanh")
    dense_case("dense_out_in_no_bias_clip", 3, 7, 5, "out_in", activation="clip", bias=False)

    # Batched MatMul with broadcasting and rank-1 operands.
    matmul_case("matmul_broadcast_batch", [5, 1, 3, 4], [2, 4, 6])
    matmul_case("matmul_shared_weights", [2, 3, 4, 5], [5, 7])
    matmul_case("matmul_vector_right", [3, 4], [4])
    matmul_case("matmul_vector_left", [4], [2, 4, 5])
    matmul_case("matmul_broadcast_left", [1, 3, 4], [2, 4, 2])

    # Pooling.
    pool_case("maxpool_nhwc_2x2", "max", "nhwc", (2, 5, 7, 7), (2, 2), (2, 2))
    pool_case("maxpool_nchw_ceil", "max", "nchw", (1, 13, 8, 8), (3, 3), (2, 2), ceil_mode=1)
    pool_case("maxpool_nhwc_asymmetric_pads", "max", "nhwc", (1, 3, 6, 5), (3, 2), (1, 2), pads=(1, 0, 0, 1))
    pool_case("avgpool_nchw_pads_exclude", "avg", "nchw", (2, 3, 7, 7), (3, 3), (2, 2), pads=(1, 1, 1, 1))
    pool_case("avgpool_nchw_pads_include", "avg", "nchw", (2, 3, 7, 7), (3, 3), (2, 2), pads=(1, 1, 1, 1),
              count_include_pad=1)
    pool_case("avgpool_nhwc_ceil_include", "avg", "nhwc", (1, 5, 8, 7), (3, 3), (2, 2), pads=(0, 1, 1, 0), ceil_mode=1,
              count_include_pad=1)
    pool_case("avgpool_nhwc_ceil_exclude", "avg", "nhwc", (1, 17, 7, 7), (2, 2), (2, 2), ceil_mode=1)
    pool_case("maxpool_nhwc_ceil_last_window_in_padding", "max", "nhwc", (1, 3, 6, 6), (2, 2), (2, 2),
              pads=(0, 0, 1, 1), ceil_mode=1)
    pool_case("avgpool_nchw_ceil_last_window_in_padding", "avg", "nchw", (1, 3, 6, 6), (2, 2), (2, 2),
              pads=(0, 0, 1, 1), ceil_mode=1, count_include_pad=1)
    pool_case("avgpool_nchw_1x1_spatial", "avg", "nchw", (5, 3, 1, 1), (1, 1), (1, 1))
    pool_case("maxpool_nchw_dilation2_padded", "max", "nchw", (1, 2, 7, 6), (3, 2), (2, 1), pads=(2, 1, 1, 1),
              dilations=(2, 3))
    pool_case("avgpool_nhwc_dilation2_include_pad", "avg", "nhwc", (2, 3, 6, 7), (2, 3), (1, 2), pads=(1, 1, 1, 1),
              count_include_pad=1, dilations=(2, 2))
    pool_case("avgpool_nchw_dilation_ceil_exclude", "avg", "nchw", (1, 2, 8, 8), (2, 2), (3, 3), pads=(1, 0, 0, 1),
              ceil_mode=1, dilations=(3, 2))
    global_pool_case("global_avg_nhwc", "avg", "nhwc", (2, 13, 3, 5))
    global_pool_case("global_avg_nchw", "avg", "nchw", (5, 3, 4, 4))
    global_pool_case("global_max_nhwc", "max", "nhwc", (1, 17, 7, 7))
    global_pool_case("global_max_nchw", "max", "nchw", (2, 5, 1, 1))

    # Normalisation.
    batch_norm_case("batch_norm_nchw", (2, 5, 3, 4), 1e-5)
    batch_norm_case("batch_norm_rows", (6, 13), 1e-3)
    layer_norm_case("layer_norm_last_axis", (2, 5, 48), -1, 1e-3, True)
    layer_norm_case("layer_norm_two_axes_no_beta", (3, 4, 5), 1, 1e-5, False)
    instance_norm_case("instance_norm_nchw", "nchw", (2, 3, 4, 5), 1e-5)
    instance_norm_case("instance_norm_nhwc", "nhwc", (2, 5, 3, 3), 1e-3)
    lrn_case("lrn_nchw_size3", "nchw", (2, 7, 3, 3), 3, 0.3, 0.75, 1.5)
    lrn_case("lrn_nhwc_size5", "nhwc", (1, 6, 2, 3), 5, 0.5, 0.6, 2.0)

    # Softmax.
    softmax_case("softmax_axis1_rank3", (2, 5, 3), 1)
    softmax_case("softmax_last_axis", (4, 10), -1)
    softmax_case("softmax_axis0", (3, 4), 0)
    softmax_case("log_softmax_axis1_rank3", (2, 5, 3), 1, log=True)
    softmax_case("log_softmax_last_axis", (3, 9), -1, log=True)

    # Unary activations.
    def single(op, **attrs):
        return [helper.make_node(op, ["x"], ["y"], **attrs)]
    unary_case("relu", single("Relu"))
    unary_case("leaky_relu", single("LeakyRelu", alpha=0.2), {"alpha": 0.2})
    unary_case("elu", single("Elu", alpha=0.7), {"alpha": 0.7})
    unary_case("selu", single("Selu"))
    unary_case("selu_custom", single("Selu", alpha=1.3, gamma=0.7), {"alpha": 1.3, "gamma": 0.7})
    unary_case("sigmoid", single("Sigmoid"))
    unary_case("tanh", single("Tanh"))
    unary_case("gelu", single("Gelu", approximate="none"), {"approximate": "none"})
    unary_case("gelu_tanh", single("Gelu", approximate="tanh"), {"approximate": "tanh"})
    unary_case("erf", single("Erf"))
    unary_case("softplus", single("Softplus"))
    unary_case("hard_sigmoid", single("HardSigmoid", alpha=0.2, beta=0.5), {"alpha": 0.2, "beta": 0.5})
    unary_case("hard_swish", single("HardSwish"))
    unary_case("swish", [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])])
    unary_case("clip", [helper.make_node("Clip", ["x", "lo", "hi"], ["y"])], {"min": -1.0, "max": 2.0},
               {"lo": np.array(-1.0, np.float32), "hi": np.array(2.0, np.float32)})
    unary_case("sqrt", single("Sqrt"), positive=True)
    unary_case("exp", single("Exp"))
    unary_case("log", single("Log"), positive=True)
    unary_case("neg", single("Neg"))
    unary_case("abs", single("Abs"))

    # Binary arithmetic with broadcasting.
    binary_case("add_broadcast_5x1x3_4x1", "Add", (5, 1, 3), (4, 1))
    binary_case("sub_same_shape", "Sub", (2, 3, 4), (2, 3, 4))
    binary_case("mul_nhwc_per_channel", "Mul", (2, 3, 3, 5), (5,))
    binary_case("div_nchw_per_channel", "Div", (2, 5, 3, 3), (5, 1, 1), positive_b=True)
    binary_case("pow_scalar_exponent", "Pow", (3, 4), (), positive_a=True)
    binary_case("max_both_broadcast", "Max", (2, 1, 4), (3, 1))
    binary_case("min_scalar_first", "Min", (), (2, 3))
    binary_case("add_large_same_shape", "Add", (3, 40, 300), (3, 40, 300))
    binary_case("prelu_nchw_per_channel", "PRelu", (2, 5, 3, 3), (5, 1, 1))
    binary_case("prelu_same_shape", "PRelu", (3, 4), (3, 4))
    sum_case("sum_three_broadcast", [(2, 3, 4), (3, 1), (4,)])
    sum_case("sum_single", [(2, 3)])

    # Reductions.
    reduce_case("reduce_mean_axes12", "ReduceMean", (2, 3, 4, 5), [1, 2])
    reduce_case("reduce_sum_axes02", "ReduceSum", (2, 3, 4, 5), [0, 2])
    reduce_case("reduce_mean_all", "ReduceMean", (3, 4, 5), None)
    reduce_case("reduce_sum_last", "ReduceSum", (3, 4, 5), [-1], keepdims=0)

    # Data movement.
    transpose_case("transpose_nhwc_to_nchw", [2, 3, 4, 5], [0, 3, 1, 2])
    transpose_case("transpose_nchw_to_nhwc", [2, 5, 3, 4], [0, 2, 3, 1])
    transpose_case("transpose_rank6", [2, 1, 3, 2, 2, 3], [5, 3, 1, 0, 4, 2])
    transpose_case("transpose_matrix", [7, 13], [1, 0])
    concat_case("concat_axis1", [(2, 3, 4), (2, 1, 4), (2, 5, 4)], 1)
    concat_case("concat_last_axis", [(2, 3), (2, 4)], -1)
    pad_case("pad_three_axes", (2, 3, 4), [0, 1, 2, 1, 0, 3], 0.5)
    pad_case("pad_negative_crop", (3, 5), [1, -1, 0, 2], 0.0)
    slice_case("slice_steps", (5, 6, 7), [1, -1, 0], [4, -7, 7], [0, 1, 2], [2, -2, 3])
    slice_case("slice_clamped_last_axis", (4, 6), [2], [1000], [-1], [1])
    gather_case("gather_axis1_negative", (5, 4, 3), [[2, 0], [-1, 2]], 1)
    gather_case("gather_axis0", (5, 4), [4, 1], 0)
    resize_case("resize_nearest_nchw_scales", "nchw", (1, 2, 3, 4), "nearest", scales=[2.0, 1.5])
    resize_case("resize_nearest_nhwc_asymmetric_floor", "nhwc", (2, 3, 4, 3), "nearest", "asymmetric", "floor",
                sizes=[7, 5])
    resize_case("resize_nearest_nchw_align_corners_ceil", "nchw", (1, 1, 5, 4), "nearest", "align_corners", "ceil",
                sizes=[3, 7])
    resize_case("resize_nearest_nchw_round_prefer_ceil", "nchw", (1, 2, 4, 4), "nearest", "half_pixel",
                "round_prefer_ceil", sizes=[6, 2])
    resize_case("resize_linear_nchw_half_pixel", "nchw", (2, 2, 3, 5), "linear", sizes=[7, 3])
    resize_case("resize_linear_nhwc_align_corners", "nhwc", (1, 4, 3, 3), "linear", "align_corners", sizes=[5, 8])
    resize_case("resize_linear_nchw_pytorch_half_pixel", "nchw", (1, 1, 6, 5), "linear", "pytorch_half_pixel",
                sizes=[1, 3])
    resize_case("resize_linear_nchw_half_pixel_symmetric", "nchw", (1, 2, 3, 4), "linear", "half_pixel_symmetric",
                scales=[1.7, 0.6])
    resize_case("resize_linear_nchw_antialias_shrink", "nchw", (1, 2, 9, 7), "linear", sizes=[4, 3], antialias=1)
    resize_case("resize_linear_nhwc_antialias_mixed", "nhwc", (1, 3, 8, 3), "linear", scales=[0.45, 2.0], antialias=1)
    resize_case("resize_linear_nchw_crop_and_resize", "nchw", (1, 2, 5, 5), "linear", "tf_crop_and_resize",
                sizes=[4, 3], roi=[0.2, -0.1, 0.9, 1.3], extrapolation=-2.0)
    resize_case("resize_cubic_nchw_half_pixel_up", "nchw", (1, 2, 4, 5), "cubic", sizes=[7, 9])
    resize_case("resize_cubic_nhwc_pytorch_half_pixel_down", "nhwc", (1, 3, 9, 8), "cubic", "pytorch_half_pixel",
                sizes=[5, 3])
    resize_case("resize_cubic_nchw_align_corners", "nchw", (2, 1, 4, 4), "cubic", "align_corners", sizes=[6, 7])
    resize_case("resize_cubic_nchw_exclude_outside_a_half", "nchw", (1, 2, 5, 6), "cubic", scales=[1.5, 0.8],
                cubic_coeff_a=-0.5, exclude_outside=1)
    split_case("split_axis1_uneven", (2, 7, 3), [2, 4, 1], 1)
    split_case("split_last_axis_with_empty_piece", (3, 5), [0, 5], -1)
    tile_case("tile_rank3", (2, 3, 2), [2, 1, 3])
    tile_case("tile_vector", (4,), [3])
    block_case("depth_to_space_nchw_dcr", "DepthToSpace", "nchw", (2, 8, 2, 3), 2, "DCR")
    block_case("depth_to_space_nchw_crd", "DepthToSpace", "nchw", (1, 12, 2, 2), 2, "CRD")
    block_case("depth_to_space_nhwc_dcr", "DepthToSpace", "nhwc", (1, 18, 2, 3), 3, "DCR")
    block_case("depth_to_space_nhwc_crd", "DepthToSpace", "nhwc", (2, 8, 3, 2), 2, "CRD")
    block_case("space_to_depth_nchw", "SpaceToDepth", "nchw", (2, 3, 4, 6), 2)
    block_case("space_to_depth_nhwc", "SpaceToDepth", "nhwc", (1, 2, 6, 3), 3)

    with open(os.path.join(OUT, "manifest.json"), "w") as handle:
        json.dump({"generator": "tools/gen_kernel_fixtures.py", "onnxruntime": ort.__version__, "cases": cases},
                  handle, indent=1)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(cases)} cases, {total / 1024:.0f} KiB in {OUT}")


if __name__ == "__main__":
    main()
