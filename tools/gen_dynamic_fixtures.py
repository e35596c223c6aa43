#!/usr/bin/env python3
"""Writes small ONNX graphs whose shapes depend on the batch, with ONNX Runtime's outputs at batch
1 and 4, into Tests/KeelConformanceTests/DynamicShapes/<case>/ (model.onnx, input_b1.pb,
output_b1.pb, input_b4.pb, output_b4.pb; TensorProto files).

Each graph repeats a node pattern the exporters write around a symbolic batch (see
tools/zoo/dynamic_models.py for the full models), at a few KB, so `make test` covers the pattern
without Python. Run from the repository root: python3 tools/gen_dynamic_fixtures.py
"""
import os
import shutil

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "KeelConformanceTests", "DynamicShapes")
rng = np.random.default_rng(20261201)


def ints(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def floats(name, *shape):
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.5).astype(np.float32), name)


def save(name, nodes, initializers, input_shape, output_rank, opset=15):
    """The graph with a symbolic batch, and ONNX Runtime's outputs at batch 1 and 4 (input_b1.pb, ...)."""
    cases = {f"b{batch}": [batch] + list(input_shape) for batch in (1, 4)}
    write_cases(name, nodes, initializers, ["N"] + list(input_shape), cases, output_rank, opset)


def write_cases(name, nodes, initializers, input_dims, cases, output_rank, opset):
    """Writes model.onnx (input x of `input_dims`, output y) and, for each tag and shape of
    `cases`, a random input_<tag>.pb with ONNX Runtime's output_<tag>.pb."""
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_dims)]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * output_rank)]
    graph = helper.make_graph(nodes, name, inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="gen_dynamic_fixtures")
    onnx.checker.check_model(model)
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    onnx.save(model, os.path.join(folder, "model.onnx"))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for tag, shape in cases.items():
        x = rng.standard_normal(shape).astype(np.float32)
        y = session.run(None, {"x": x})[0]
        onnx.save_tensor(numpy_helper.from_array(x, "x"), os.path.join(folder, f"input_{tag}.pb"))
        onnx.save_tensor(numpy_helper.from_array(y, "y"), os.path.join(folder, f"output_{tag}.pb"))


def tf2onnx_dense_over_tokens():
    """Keras Dense on [N,T,C] as tf2onnx writes it: Reshape [-1,C], MatMul, Reshape back to
    Concat(Shape(x)[0:2], [units]) (the batch lands at a position the [T·N,units] input lacks)."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Cast", ["shape"], ["shape32"], to=TensorProto.INT32),
        helper.make_node("Gather", ["shape32", "first_two"], ["leading"], axis=0),
        helper.make_node("Concat", ["leading", "units"], ["target32"], axis=0),
        helper.make_node("Cast", ["target32"], ["target"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["x", "rows"], ["flat"]),
        helper.make_node("MatMul", ["flat", "kernel"], ["projected"]),
        helper.make_node("Reshape", ["projected", "target"], ["y"]),
    ]
    initializers = [numpy_helper.from_array(np.array([0, 1], np.int32), "first_two"),
                    numpy_helper.from_array(np.array([5], np.int32), "units"),
                    ints("rows", [-1, 6]), floats("kernel", 6, 5)]
    save("tf2onnx_dense_over_tokens", nodes, initializers, [4, 6], 3)


def token_count_products():
    """tf2onnx's per-head reshapes: ReduceProd of Shape(x)[0:2] is T·N rows, then Div, Mul and
    Max of sizes, and the head split [N·H, T, D] with the file's own -1."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Slice", ["shape", "zero", "two"], ["leading"]),
        helper.make_node("ReduceProd", ["leading"], ["rows"], keepdims=1),
        helper.make_node("Concat", ["rows", "eight"], ["flat_target"], axis=0),
        helper.make_node("Reshape", ["x", "flat_target"], ["flat"]),
        helper.make_node("Relu", ["flat"], ["activated"]),
        helper.make_node("Max", ["leading", "leading"], ["same_leading"]),
        helper.make_node("Gather", ["same_leading", "zero_scalar"], ["batch"]),
        helper.make_node("Mul", ["batch", "two_scalar"], ["batch_heads"]),
        helper.make_node("Unsqueeze", ["batch_heads", "zero"], ["batch_heads_vec"]),
        helper.make_node("Concat", ["batch_heads_vec", "minus_one", "four"], ["heads_target"], axis=0),
        helper.make_node("Reshape", ["activated", "heads_target"], ["y"]),
    ]
    initializers = [ints("zero", [0]), ints("two", [2]), ints("eight", [8]), ints("minus_one", [-1]), ints("four", [4]),
                    numpy_helper.from_array(np.array(0, np.int64), "zero_scalar"),
                    numpy_helper.from_array(np.array(2, np.int64), "two_scalar")]
    save("token_count_products", nodes, initializers, [3, 8], 3)


def legacy_pytorch_where_equal():
    """The legacy PyTorch exporter's reshape target: Where(Equal(target, -1), ones, target)
    fed through Mul/Div of sizes, with Range and Mod computing axes."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Equal", ["shape", "minus_ones"], ["unset"]),
        helper.make_node("Where", ["unset", "ones", "shape"], ["expanded"]),
        helper.make_node("Gather", ["expanded", "zero_scalar"], ["batch"]),
        helper.make_node("Range", ["zero_scalar", "two_scalar", "one_scalar"], ["axes"]),
        helper.make_node("Mod", ["axes", "two_scalar"], ["same_axes"]),
        helper.make_node("Gather", ["shape", "same_axes"], ["leading"]),
        helper.make_node("ReduceProd", ["leading"], ["rows"], keepdims=1),
        helper.make_node("Div", ["rows", "batch"], ["per_image"]),
        helper.make_node("Unsqueeze", ["batch", "zero"], ["batch_vec"]),
        helper.make_node("Concat", ["batch_vec", "per_image", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    initializers = [ints("minus_ones", [-1, -1, -1]), ints("ones", [1, 1, 1]), ints("zero", [0]), ints("minus_one", [-1]),
                    numpy_helper.from_array(np.array(0, np.int64), "zero_scalar"),
                    numpy_helper.from_array(np.array(1, np.int64), "one_scalar"),
                    numpy_helper.from_array(np.array(2, np.int64), "two_scalar")]
    save("legacy_pytorch_where_equal", nodes, initializers, [3, 6], 3, opset=13)


def global_pools_of_other_ranks():
    """GlobalAveragePool on tokens [N,C,L] (Keras GlobalAveragePooling1D via tf2onnx) and
    GlobalMaxPool on a volume [N,C,D,H,W], joined into one output."""
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["average"]),
        helper.make_node("Reshape", ["x", "volume_shape"], ["volume"]),
        helper.make_node("GlobalMaxPool", ["volume"], ["maximum"]),
        helper.make_node("Reshape", ["maximum", "as_tokens"], ["maximum_tokens"]),
        helper.make_node("Add", ["average", "maximum_tokens"], ["y"]),
    ]
    initializers = [ints("volume_shape", [0, 5, 2, 3, 2]), ints("as_tokens", [0, 5, 1])]
    save("global_pools_of_other_ranks", nodes, initializers, [5, 12], 3)


def keras_upsampling_resizes():
    """Keras UpSampling2D via tf2onnx after a convolution: Resize with constant scales on a
    symbolic batch, nearest with tf_half_pixel_for_nn/floor and bilinear with half_pixel, plus
    asymmetric and align_corners (other exporters' spellings), at a non-integer scale."""
    nodes = [helper.make_node("Conv", ["x", "kernel"], ["features"], pads=[1, 1, 1, 1])]
    outputs = []
    for index, (mode, coordinates) in enumerate([("nearest", "tf_half_pixel_for_nn"), ("linear", "half_pixel"),
                                                 ("nearest", "asymmetric"), ("linear", "align_corners"),
                                                 ("linear", "pytorch_half_pixel")]):
        scales = "scales" if index < 2 else "odd_scales"
        nodes.append(helper.make_node("Resize", ["features", "roi", scales], [f"resized_{index}"], mode=mode,
                                      coordinate_transformation_mode=coordinates, nearest_mode="floor"))
        outputs.append(f"resized_{index}")
    nodes.append(helper.make_node("Concat", outputs[:2], ["even"], axis=1))
    nodes.append(helper.make_node("Concat", outputs[2:], ["odd"], axis=1))
    # sizes known only per batch, as PyTorch's interpolate(size=...) writes them: Shape(x)[0:2] + [10, 10].
    nodes.append(helper.make_node("Shape", ["odd"], ["odd_shape"]))
    nodes.append(helper.make_node("Slice", ["odd_shape", "zero", "two"], ["leading"]))
    nodes.append(helper.make_node("Concat", ["leading", "spatial_size"], ["even_size"], axis=0))
    nodes.append(helper.make_node("Resize", ["odd", "roi", "", "even_size"], ["odd_resized"], mode="nearest",
                                  coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
    nodes.append(helper.make_node("Concat", ["even", "odd_resized"], ["y"], axis=1))
    initializers = [floats("kernel", 2, 3, 3, 3), numpy_helper.from_array(np.array([], np.float32), "roi"),
                    numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
                    numpy_helper.from_array(np.array([1, 1, 1.5, 2.5], np.float32), "odd_scales"),
                    ints("zero", [0]), ints("two", [2]), ints("spatial_size", [10, 10])]
    save("keras_upsampling_resizes", nodes, initializers, [3, 5, 5], 4, opset=13)


def scalar(name, value):
    return numpy_helper.from_array(np.array(value, dtype=np.float32), name)


def tf2onnx_fused_layer_norm():
    """Keras LayerNormalization on tokens [N,T,C] via tf2onnx (the seed's ViT head): a training-mode
    BatchNormalization over the tokens reshaped to [1,N*T,C,1], its mean from ReduceMean, its
    variance from ReduceSumSquare / the reduced count, scale and bias Expanded to N*T; gamma and
    beta after the reshape back."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Slice", ["shape", "zero", "two"], ["leading"]),
        helper.make_node("ReduceProd", ["leading"], ["rows"], axes=[0], keepdims=0),
        helper.make_node("Unsqueeze", ["rows", "zero"], ["rows_vec"]),
        helper.make_node("Expand", ["one_value", "rows_vec"], ["ones"]),
        helper.make_node("Expand", ["zero_value", "rows_vec"], ["zeros"]),
        helper.make_node("Reshape", ["x", "as_image"], ["image"]),
        helper.make_node("Shape", ["image"], ["image_shape"]),
        helper.make_node("Gather", ["image_shape", "reduced_axes"], ["reduced_extents"]),
        helper.make_node("ReduceProd", ["reduced_extents"], ["count"], axes=[0], keepdims=0),
        helper.make_node("Cast", ["count"], ["count_float"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["image"], ["mean"], axes=[0, 2, 3], keepdims=1),
        helper.make_node("Sub", ["image", "mean"], ["centred"]),
        helper.make_node("ReduceSumSquare", ["centred"], ["squares"], axes=[0, 2, 3], keepdims=0),
        helper.make_node("Squeeze", ["mean", "reduced_axes"], ["mean_rows"]),
        helper.make_node("Div", ["squares", "count_float"], ["variance"]),
        helper.make_node("BatchNormalization", ["image", "ones", "zeros", "mean_rows", "variance"], ["normalised"], epsilon=1e-3),
        helper.make_node("Reshape", ["normalised", "shape"], ["tokens"]),
        helper.make_node("Mul", ["tokens", "gamma"], ["scaled"]),
        helper.make_node("Add", ["scaled", "beta"], ["y"]),
    ]
    initializers = [ints("zero", [0]), ints("two", [2]), ints("as_image", [1, -1, 6, 1]), ints("reduced_axes", [0, 2, 3]),
                    scalar("one_value", 1.0), scalar("zero_value", 0.0),
                    floats("gamma", 6), floats("beta", 6)]
    save("tf2onnx_fused_layer_norm", nodes, initializers, [4, 6], 3)


def tf2onnx_layer_norm_moments():
    """Keras LayerNormalization via tf2onnx when it cannot use the fused kernel (small epsilon):
    tf.nn.moments as GlobalAveragePool on tokens or ReduceMean on images, SquaredDifference as
    Sub and Mul, Rsqrt as Sqrt and Reciprocal, then x·f + (beta - mean·f); with beta 0 tf2onnx
    writes the shift as Neg(mean·f). Two norms: tokens [N,T,C] and a ConvNeXt-style image."""
    nodes = []
    def layer_norm(prefix, x, mean_node, gamma, beta, output):
        nodes.extend([
            mean_node(x, prefix + "mean"),
            helper.make_node("Sub", [x, prefix + "mean"], [prefix + "difference"]),
            helper.make_node("Mul", [prefix + "difference", prefix + "difference"], [prefix + "squared"]),
            mean_node(prefix + "squared", prefix + "variance"),
            helper.make_node("Add", [prefix + "variance", "epsilon"], [prefix + "shifted"]),
            helper.make_node("Sqrt", [prefix + "shifted"], [prefix + "deviation"]),
            helper.make_node("Reciprocal", [prefix + "deviation"], [prefix + "inverse"]),
            helper.make_node("Mul", [prefix + "inverse", gamma], [prefix + "factor"]),
            helper.make_node("Mul", [prefix + "mean", prefix + "factor"], [prefix + "mean_factor"]),
            helper.make_node("Mul", [x, prefix + "factor"], [prefix + "scaled"]),
        ])
        if beta is None:
            nodes.append(helper.make_node("Neg", [prefix + "mean_factor"], [prefix + "shift"]))
        else:
            nodes.append(helper.make_node("Sub", [beta, prefix + "mean_factor"], [prefix + "shift"]))
        nodes.append(helper.make_node("Add", [prefix + "scaled", prefix + "shift"], [output]))
    pool = lambda x, out: helper.make_node("GlobalAveragePool", [x], [out])
    reduce = lambda x, out: helper.make_node("ReduceMean", [x], [out], axes=[-1], keepdims=1)
    layer_norm("tokens_", "x", pool, "gamma", None, "tokens_normalised")
    nodes.append(helper.make_node("Reshape", ["tokens_normalised", "as_image"], ["image"]))
    layer_norm("image_", "image", reduce, "gamma", "beta", "image_normalised")
    nodes.append(helper.make_node("Reshape", ["image_normalised", "as_tokens"], ["y"]))
    initializers = [scalar("epsilon", 1e-6), floats("gamma", 8), floats("beta", 8),
                    ints("as_image", [0, 2, 3, 8]), ints("as_tokens", [0, 6, 8])]
    save("tf2onnx_layer_norm_moments", nodes, initializers, [6, 8], 3)


def pytorch_layer_norms():
    """PyTorch's layer norms: the decomposed form older opsets get (ReduceMean, Sub, Pow 2,
    ReduceMean, Add ε, Sqrt, Div, Mul weight, Add bias) and the LayerNormalization op (opset 17),
    here with its bias from an Identity of a shared initializer, as the TorchScript exporter
    writes equal weights."""
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["mean"], axes=[-1], keepdims=1),
        helper.make_node("Sub", ["x", "mean"], ["centred"]),
        helper.make_node("Pow", ["centred", "two_value"], ["squared"]),
        helper.make_node("ReduceMean", ["squared"], ["variance"], axes=[-1], keepdims=1),
        helper.make_node("Add", ["variance", "epsilon"], ["shifted"]),
        helper.make_node("Sqrt", ["shifted"], ["deviation"]),
        helper.make_node("Div", ["centred", "deviation"], ["normalised"]),
        helper.make_node("Mul", ["normalised", "weight"], ["scaled"]),
        helper.make_node("Add", ["scaled", "bias"], ["decomposed"]),
        helper.make_node("Identity", ["bias"], ["shared_bias"]),
        helper.make_node("LayerNormalization", ["decomposed", "weight", "shared_bias"], ["y"], axis=-1, epsilon=1e-5),
    ]
    initializers = [scalar("two_value", 2.0), scalar("epsilon", 1e-5), floats("weight", 8), floats("bias", 8)]
    save("pytorch_layer_norms", nodes, initializers, [5, 8], 3, opset=17)


def gelu_forms():
    """GELU as the exporters write it: tf2onnx's 0.5·x · (1 + erf(x·(1/√2))), PyTorch's
    ((1 + erf(x/√2))·x)·0.5, and the tanh approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))."""
    nodes = [
        # tf2onnx
        helper.make_node("Mul", ["x", "inverse_root_two"], ["tf_argument"]),
        helper.make_node("Erf", ["tf_argument"], ["tf_erf"]),
        helper.make_node("Add", ["one", "tf_erf"], ["tf_plus_one"]),
        helper.make_node("Mul", ["half", "x"], ["tf_half_x"]),
        helper.make_node("Mul", ["tf_half_x", "tf_plus_one"], ["tf_gelu"]),
        # PyTorch
        helper.make_node("Div", ["tf_gelu", "root_two"], ["pt_argument"]),
        helper.make_node("Erf", ["pt_argument"], ["pt_erf"]),
        helper.make_node("Add", ["pt_erf", "one"], ["pt_plus_one"]),
        helper.make_node("Mul", ["tf_gelu", "pt_plus_one"], ["pt_product"]),
        helper.make_node("Mul", ["pt_product", "half"], ["pt_gelu"]),
        # tanh approximation
        helper.make_node("Pow", ["pt_gelu", "three"], ["cube"]),
        helper.make_node("Mul", ["cube", "coefficient"], ["scaled_cube"]),
        helper.make_node("Add", ["pt_gelu", "scaled_cube"], ["inner"]),
        helper.make_node("Mul", ["inner", "root_two_over_pi"], ["tanh_argument"]),
        helper.make_node("Tanh", ["tanh_argument"], ["tanh"]),
        helper.make_node("Add", ["tanh", "one"], ["tanh_plus_one"]),
        helper.make_node("Mul", ["pt_gelu", "half"], ["half_x"]),
        helper.make_node("Mul", ["half_x", "tanh_plus_one"], ["y"]),
    ]
    initializers = [scalar("inverse_root_two", 0.5 ** 0.5), scalar("root_two", 2 ** 0.5), scalar("one", 1.0), scalar("half", 0.5),
                    scalar("three", 3.0), scalar("coefficient", 0.044715), scalar("root_two_over_pi", (2 / np.pi) ** 0.5)]
    save("gelu_forms", nodes, initializers, [3, 7], 3)


def dynamo_as_strided_gather():
    """PyTorch's dynamo exporter writes as_strided ([N,C,1,1] view of a flat tensor, ConvNeXt's
    head) as a Gather whose indices are computed per batch: Range(0, N)·C, unsqueezed to
    [N,1,1,1], plus an arange(C) constant [1,C,1,1] and a zero; they walk the data in order."""
    nodes = [
        helper.make_node("ReduceMean", ["x", "spatial_axes"], ["pooled"], keepdims=1),
        helper.make_node("Reshape", ["pooled", "minus_one"], ["flat"]),
        helper.make_node("Shape", ["x"], ["batch_vec"], start=0, end=1),
        helper.make_node("Squeeze", ["batch_vec"], ["batch"]),
        helper.make_node("Range", ["zero_scalar", "batch", "one_scalar"], ["images"]),
        helper.make_node("Mul", ["images", "channels"], ["image_starts"]),
        helper.make_node("Unsqueeze", ["image_starts", "trailing_axes"], ["image_starts_4d"]),
        helper.make_node("Add", ["image_starts_4d", "channel_offsets"], ["indices"]),
        helper.make_node("Add", ["indices", "zeros"], ["same_indices"]),
        helper.make_node("Gather", ["flat", "same_indices"], ["strided"], axis=0),
        helper.make_node("Relu", ["strided"], ["y"]),
    ]
    initializers = [ints("spatial_axes", [2, 3]), ints("minus_one", [-1]), ints("trailing_axes", [1, 2, 3]),
                    numpy_helper.from_array(np.array(0, np.int64), "zero_scalar"),
                    numpy_helper.from_array(np.array(1, np.int64), "one_scalar"),
                    numpy_helper.from_array(np.array(5, np.int64), "channels"),
                    numpy_helper.from_array(np.arange(5, dtype=np.int64).reshape(1, 5, 1, 1), "channel_offsets"),
                    numpy_helper.from_array(np.zeros((1, 1, 1, 1), np.int64), "zeros")]
    save("dynamo_as_strided_gather", nodes, initializers, [5, 3, 3], 4, opset=18)


def tf2onnx_channel_layer_norm():
    """Keras LayerNormalization on a rank-4 NHWC tensor after a DepthwiseConv2D via tf2onnx
    (ConvNeXt-style): tf2onnx keeps the convolution's NCHW and normalises over axis 1 with
    ReduceMean, Sub, Mul, Sqrt, Reciprocal and the tf.nn.batch_normalization affine form, gamma
    as [1,C,1,1], then transposes to NHWC."""
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["x", "mean"], ["difference"]),
        helper.make_node("Mul", ["difference", "difference"], ["squared"]),
        helper.make_node("ReduceMean", ["squared"], ["variance"], axes=[1], keepdims=1),
        helper.make_node("Add", ["variance", "epsilon"], ["shifted"]),
        helper.make_node("Sqrt", ["shifted"], ["deviation"]),
        helper.make_node("Reciprocal", ["deviation"], ["inverse"]),
        helper.make_node("Mul", ["inverse", "gamma"], ["factor"]),
        helper.make_node("Mul", ["mean", "factor"], ["mean_factor"]),
        helper.make_node("Sub", ["beta", "mean_factor"], ["shift"]),
        helper.make_node("Mul", ["x", "factor"], ["scaled"]),
        helper.make_node("Add", ["scaled", "shift"], ["normalised"]),
        helper.make_node("Transpose", ["normalised"], ["y"], perm=[0, 2, 3, 1]),
    ]
    initializers = [scalar("epsilon", 1e-6), floats("gamma", 1, 8, 1, 1), floats("beta", 1, 8, 1, 1)]
    save("tf2onnx_channel_layer_norm", nodes, initializers, [8, 3, 3], 4)


def pytorch_attention(dynamo):
    """torch.nn.MultiheadAttention (torchvision's ViT encoder) as the exporters write it, with 5
    tokens and 2 heads of 4 features: tokens to [T,N,C], one QKV projection, Reshape/Unsqueeze/
    Transpose/Squeeze and a Gather per q, k, v, per-head Reshape/Transpose/Reshape, q and kᵀ each
    multiplied by d^-1/4, MatMul, Softmax, MatMul, then back to [T·N,C] rows for the output
    projection and to [N,T,C]. The dynamo exporter transposes k through one more
    Reshape/Transpose/Reshape."""
    nodes = [
        helper.make_node("Transpose", ["x"], ["tokens_first"], perm=[1, 0, 2]),
        helper.make_node("MatMul", ["tokens_first", "in_proj"], ["projected"]),
        helper.make_node("Add", ["projected", "in_bias"], ["qkv"]),
        helper.make_node("Reshape", ["qkv", "split_shape"], ["split"]),
        helper.make_node("Unsqueeze", ["split", "zero_axis"], ["lifted"]),
        helper.make_node("Transpose", ["lifted"], ["moved"], perm=[3, 1, 2, 0, 4]),
        helper.make_node("Squeeze", ["moved", "squeezed_axis"], ["parts"]),
    ]
    for index, name in enumerate(["q", "k", "v"]):
        nodes += [
            helper.make_node("Gather", ["parts", f"index_{index}"], [name], axis=0),
            helper.make_node("Reshape", [name, "head_rows"], [f"{name}_heads"]),
            helper.make_node("Transpose", [f"{name}_heads"], [f"{name}_first"], perm=[1, 0, 2]),
            helper.make_node("Reshape", [f"{name}_first", "head_blocks"], [f"{name}4"]),
        ]
    if dynamo:
        nodes += [
            helper.make_node("Reshape", ["k4", "head_matrices"], ["k3"]),
            helper.make_node("Transpose", ["k3"], ["k3_t"], perm=[0, 2, 1]),
            helper.make_node("Reshape", ["k3_t", "key_blocks"], ["k_t"]),
        ]
    else:
        nodes.append(helper.make_node("Transpose", ["k4"], ["k_t"], perm=[0, 1, 3, 2]))
    nodes += [
        helper.make_node("Mul", ["q4", "quarter_scale"], ["q_scaled"]),
        helper.make_node("Mul", ["k_t", "quarter_scale"], ["k_scaled"]),
        helper.make_node("MatMul", ["q_scaled", "k_scaled"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["probabilities"], axis=-1),
        helper.make_node("MatMul", ["probabilities", "v4"], ["context"]),
        helper.make_node("Transpose", ["context"], ["context_tokens"], perm=[2, 0, 1, 3]),
        helper.make_node("Reshape", ["context_tokens", "rows"], ["context_rows"]),
        helper.make_node("Gemm", ["context_rows", "out_proj", "out_bias"], ["out_rows"], transB=1),
        helper.make_node("Reshape", ["out_rows", "tokens_shape"], ["out_tokens"]),
        helper.make_node("Transpose", ["out_tokens"], ["y"], perm=[1, 0, 2]),
    ]
    initializers = [floats("in_proj", 8, 24), floats("in_bias", 24), ints("split_shape", [5, 0, 3, 8]),
                    ints("zero_axis", [0]), ints("squeezed_axis", [3]), ints("head_rows", [5, -1, 4]),
                    ints("head_blocks", [-1, 2, 5, 4]), ints("head_matrices", [-1, 5, 4]), ints("key_blocks", [-1, 2, 4, 5]),
                    scalar("quarter_scale", 4 ** -0.25), ints("rows", [-1, 8]), floats("out_proj", 8, 8),
                    floats("out_bias", 8), ints("tokens_shape", [5, -1, 8])]
    initializers += [numpy_helper.from_array(np.array(index, np.int64), f"index_{index}") for index in range(3)]
    used = {name for node in nodes for name in node.input}
    save("pytorch_attention_" + ("dynamo" if dynamo else "legacy"), nodes,
         [tensor for tensor in initializers if tensor.name in used], [5, 8], 3)


def einsum_forms():
    """Einsum as exporters and hand-written models use it, chained on x [N,2,6,4] (batch, heads,
    tokens, features): attention scores and their product with values (MaxViT's relative
    attention), products with constant matrices (a free batch index on one side), `...`
    broadcasting, a pure transpose, two contracted indices at once, an outer product, implicit
    output, and three operands."""
    nodes = [
        helper.make_node("Einsum", ["x", "x"], ["scores"], equation="bhid,bhjd->bhij"),
        helper.make_node("Einsum", ["scores", "x"], ["attended"], equation="bhij,bhjd->bhid"),
        helper.make_node("Einsum", ["attended", "w1"], ["projected"], equation="bhid,de->bhie"),
        helper.make_node("Einsum", ["projected", "w2"], ["narrowed"], equation="...ie, ef -> ...if"),
        helper.make_node("Einsum", ["narrowed"], ["moved"], equation="bhif->bfhi"),
        helper.make_node("Einsum", ["moved", "w3"], ["pooled"], equation="bfhi,hi->bf"),
        helper.make_node("Einsum", ["pooled", "v1"], ["outer"], equation="bf,g->bfg"),
        helper.make_node("Einsum", ["outer", "w4"], ["implicit"], equation="bfg,gk"),
        helper.make_node("Einsum", ["implicit", "v2", "w5"], ["y"], equation="bfk,k,fk->bf"),
    ]
    initializers = [floats("w1", 4, 5), floats("w2", 5, 3), floats("w3", 2, 6), floats("v1", 4), floats("w4", 4, 2),
                    floats("v2", 2), floats("w5", 3, 2)]
    save("einsum_forms", nodes, initializers, [2, 6, 4], 2, opset=17)


def einsum_broadcast():
    """`...` axes that broadcast both ways: x [N,1,3,4] against a constant [1,5,4,2] gives
    [N,5,3,2] (ONNX Runtime wants as many ellipsis axes in each operand; Keel also aligns fewer
    from the right, as NumPy does)."""
    nodes = [helper.make_node("Einsum", ["x", "w"], ["y"], equation="...ij,...jk->...ik")]
    save("einsum_broadcast", nodes, [floats("w", 1, 5, 4, 2)], [1, 3, 4], 4, opset=17)


def reduce_norms():
    """F.normalize as PyTorch exports it (Swin V2's cosine attention): x / max(‖x‖₂, ε) over the
    last axis, then scaled by the L1 norm over the tokens (axes as an input, opset 18)."""
    nodes = [
        helper.make_node("ReduceL2", ["x", "last_axis"], ["l2"], keepdims=1),
        helper.make_node("Clip", ["l2", "epsilon"], ["l2_clipped"]),
        helper.make_node("Div", ["x", "l2_clipped"], ["normalized"]),
        helper.make_node("ReduceL1", ["x", "token_axis"], ["l1"], keepdims=1),
        helper.make_node("Mul", ["normalized", "l1"], ["y"]),
    ]
    initializers = [ints("last_axis", [-1]), ints("token_axis", [1]), scalar("epsilon", 1e-12)]
    save("reduce_norms", nodes, initializers, [5, 7], 3, opset=18)


def conv1d_forms():
    """1-D convolutions: ECA's gate (a 3-tap Conv1d over the pooled channels, timm's ECA-ResNet)
    and a strided, asymmetrically padded, biased one over [N, C, L] rows."""
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["pooled"], axes=[2], keepdims=0),
        helper.make_node("Unsqueeze", ["pooled", "one"], ["row"]),
        helper.make_node("Conv", ["row", "eca_kernel"], ["eca"], pads=[1, 1]),
        helper.make_node("Sigmoid", ["eca"], ["gate_row"]),
        helper.make_node("Reshape", ["gate_row", "gate_shape"], ["gate"]),
        helper.make_node("Mul", ["x", "gate"], ["gated"]),
        helper.make_node("Conv", ["gated", "kernel", "bias"], ["y"], strides=[2], pads=[1, 0], group=2),
    ]
    initializers = [ints("one", [1]), floats("eca_kernel", 1, 1, 3), ints("gate_shape", [0, -1, 1]),
                    floats("kernel", 6, 2, 3), floats("bias", 6)]
    save("conv1d_forms", nodes, initializers, [4, 9], 3, opset=13)


def batch_filled_encoding():
    """EdgeNeXt's Fourier positional encoding in small: ConstantOfShape of [N, H, W] (the batch
    from Shape(x)), CumSum down and across (reverse, exclusive), sin/cos, concatenated and
    projected by a 1×1 convolution, added to x."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "zero_axis"], ["batch_vec"]),
        helper.make_node("Concat", ["batch_vec", "map_size"], ["mask_shape"], axis=0),
        helper.make_node("ConstantOfShape", ["mask_shape"], ["ones"],
                         value=numpy_helper.from_array(np.array([1.0], np.float32))),
        helper.make_node("CumSum", ["ones", "one_axis"], ["rows"]),
        helper.make_node("CumSum", ["ones", "two_axis"], ["columns"], reverse=1, exclusive=1),
        helper.make_node("Sin", ["rows"], ["rows_sin"]),
        helper.make_node("Cos", ["columns"], ["columns_cos"]),
        helper.make_node("Unsqueeze", ["rows_sin", "one_axis"], ["rows_channel"]),
        helper.make_node("Unsqueeze", ["columns_cos", "one_axis"], ["columns_channel"]),
        helper.make_node("Concat", ["rows_channel", "columns_channel"], ["position"], axis=1),
        helper.make_node("Conv", ["position", "projection"], ["projected"]),
        helper.make_node("Add", ["x", "projected"], ["y"]),
    ]
    initializers = [ints("zero", 0), ints("zero_axis", [0]), ints("map_size", [3, 5]), ints("one_axis", 1),
                    ints("two_axis", 2), floats("projection", 4, 2, 1, 1)]
    save("batch_filled_encoding", nodes, initializers, [4, 3, 5], 4, opset=13)


def one_hot_repeats():
    """GCViT's `q.repeat(B // q.shape[0], 1, 1)`: the repeats vector built by OneHot with the
    batch among its values, then Tile of a [1, 6, 4] table, added to x."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "zero_axis"], ["batch_vec"]),
        helper.make_node("Concat", ["one_vec", "batch_vec"], ["values"], axis=0),
        helper.make_node("OneHot", ["first", "depth", "values"], ["one_hot"]),
        helper.make_node("Reshape", ["one_hot", "flat"], ["repeats"]),
        helper.make_node("Tile", ["table", "repeats"], ["tiled"]),
        helper.make_node("Add", ["x", "tiled"], ["y"]),
    ]
    initializers = [ints("zero", 0), ints("zero_axis", [0]), ints("one_vec", [1]), ints("first", [0]), ints("depth", 3),
                    ints("flat", [-1]), floats("table", 1, 6, 4)]
    save("one_hot_repeats", nodes, initializers, [6, 4], 3, opset=13)


def max_min_reductions():
    """CBAM-style gates after a convolution (so -O2 runs them channels-last): ReduceMax and
    ReduceMin over H and W, ReduceMax over the channels."""
    nodes = [
        helper.make_node("Conv", ["x", "kernel"], ["features"]),
        helper.make_node("ReduceMax", ["features"], ["channel_max"], axes=[2, 3], keepdims=1),
        helper.make_node("ReduceMin", ["features"], ["channel_min"], axes=[2, 3], keepdims=1),
        helper.make_node("Sub", ["channel_max", "channel_min"], ["spread"]),
        helper.make_node("Sigmoid", ["spread"], ["gate"]),
        helper.make_node("Mul", ["features", "gate"], ["gated"]),
        helper.make_node("ReduceMax", ["features"], ["pixel_max"], axes=[1], keepdims=1),
        helper.make_node("Add", ["gated", "pixel_max"], ["y"]),
    ]
    save("max_min_reductions", nodes, [floats("kernel", 6, 3, 1, 1)], [3, 4, 5], 4, opset=13)


def save_spatial(name, nodes, initializers, input_dims, shapes, output_rank, opset=17):
    """A graph whose input leaves height and width symbolic too, with ONNX Runtime's outputs at
    each of `shapes` (input_<i>.pb, output_<i>.pb): Keel fixes them from the input it is given."""
    write_cases(name, nodes, initializers, input_dims, {str(index): shape for index, shape in enumerate(shapes)},
                output_rank, opset)


def pytorch_free_image_size():
    """A PyTorch export with dynamic_axes on the batch, height and width: a padded 3×3
    convolution, a max pool, a strided convolution, then the map flattened to tokens by a Reshape
    whose target Shape/Gather/Concat compute (as `x.flatten(2).transpose(1, 2)` exports), averaged."""
    nodes = [
        helper.make_node("Conv", ["x", "kernel1", "bias1"], ["conv1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv1"], ["relu1"]),
        helper.make_node("MaxPool", ["relu1"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["pool", "kernel2", "bias2"], ["conv2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         strides=[2, 2]),
        helper.make_node("Relu", ["conv2"], ["map"]),
        helper.make_node("Shape", ["map"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Gather", ["shape", "one"], ["channels"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "axis0"], ["batch1"]),
        helper.make_node("Unsqueeze", ["channels", "axis0"], ["channels1"]),
        helper.make_node("Concat", ["batch1", "channels1", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["map", "target"], ["flat"]),
        helper.make_node("Transpose", ["flat"], ["tokens"], perm=[0, 2, 1]),
        helper.make_node("ReduceMean", ["tokens"], ["y"], axes=[1], keepdims=0),
    ]
    initializers = [floats("kernel1", 8, 3, 3, 3), floats("bias1", 8), floats("kernel2", 6, 8, 3, 3), floats("bias2", 6),
                    ints("zero", 0), ints("one", 1), ints("axis0", [0]), ints("minus_one", [-1])]
    save_spatial("pytorch_free_image_size", nodes, initializers, ["N", 3, "H", "W"], [[1, 3, 20, 28], [3, 3, 33, 17]], 2,
                 opset=13)


def tf2onnx_free_image_size():
    """A Keras backbone built without an input size, as tf2onnx writes it: [unk,unk,unk,3] NHWC,
    transposed around a same-padded 3×3 convolution and a 2×2 pool; the output map's height and
    width follow the input's."""
    nodes = [
        helper.make_node("Transpose", ["x"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "kernel", "bias"], ["conv"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("MaxPool", ["relu"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Transpose", ["pool"], ["y"], perm=[0, 2, 3, 1]),
    ]
    save_spatial("tf2onnx_free_image_size", nodes, [floats("kernel", 8, 3, 3, 3), floats("bias", 8)],
                 ["unk__1", "unk__2", "unk__3", 3], [[1, 24, 20, 3], [2, 15, 31, 3]], 4)


if __name__ == "__main__":
    shutil.rmtree(OUT, ignore_errors=True)
    tf2onnx_dense_over_tokens()
    token_count_products()
    legacy_pytorch_where_equal()
    global_pools_of_other_ranks()
    keras_upsampling_resizes()
    tf2onnx_fused_layer_norm()
    tf2onnx_layer_norm_moments()
    pytorch_layer_norms()
    gelu_forms()
    dynamo_as_strided_gather()
    tf2onnx_channel_layer_norm()
    pytorch_attention(dynamo=False)
    pytorch_attention(dynamo=True)
    einsum_forms()
    reduce_norms()
    einsum_broadcast()
    conv1d_forms()
    batch_filled_encoding()
    one_hot_repeats()
    max_min_reductions()
    pytorch_free_image_size()
    tf2onnx_free_image_size()
    print("wrote", OUT)
