#!/usr/bin/env python3
"""Writes VGG16 transfer-learning models as ONNX files in the two shapes exporters produce, with
ONNX Runtime's outputs for reference, so `keel run --weights` can be checked without TensorFlow
or PyTorch.

    tools/gen_vgg16_onnx.py OUT_DIR          VGG16 + resnet head (224x224x3), batches 1 and 8
    tools/gen_vgg16_onnx.py --mini OUT_DIR   the small VGG-like network the Keel tests use

Each run writes, for a network with the Keras layer names of graphs/vgg16_resnet_head.keel:
  tf2onnx.onnx   what tf2onnx writes for the Keras model: NHWC input `input_1` with a symbolic
                 batch, one Transpose to NCHW, Conv/Relu/MaxPool in NCHW (OIHW weights named
                 `model/<layer>/Conv2D/ReadVariableOp:0`), a Transpose back to NHWC, Keras's
                 Flatten as Shape/Gather/Unsqueeze/Concat/Reshape, Dense as MatMul+Add,
                 BatchNormalization folded into Mul+Add, Relu, Dense, Softmax.
  pytorch.onnx   what torch.onnx.export writes for the same network: NCHW input, weights named
                 `features.N.weight`, torch.flatten (NCHW order), Linear as Gemm(transB=1),
                 BatchNorm1d as BatchNormalization (epsilon 1e-5).
  pytorch_dynamo.onnx  what torch.onnx.export(dynamo=True) writes: torch.flatten as Reshape, and
                 BatchNorm1d folded into the Gemm before it (weight·s, (bias - mean)·s + beta with
                 s = gamma/sqrt(var + 1e-5)), so the file has no BatchNormalization at all.
  input_bB.npy (NHWC), input_bB_nchw.npy (not with --mini), and ONNX Runtime's outputs:
  <model>_bB_logits.npy and <model>_bB_softmax.npy for each model and batch B.
Both models compute the same function, so their outputs agree too.
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

VGG16_BLOCKS = [("block1", 64, 2), ("block2", 128, 2), ("block3", 256, 3), ("block4", 512, 3), ("block5", 512, 3)]
MINI_BLOCKS = [("block1", 4, 1), ("block2", 8, 2)]
KERAS_EPSILON = 0.001
TORCH_EPSILON = 1e-5


def glorot(rng, fan_in, fan_out, shape):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def make_weights(rng, blocks, image, units, classes):
    """Keras-layout weights (HWIO kernels, [in,out] dense kernels) for every layer."""
    layers = []
    channels = 3
    for name, filters, convs in blocks:
        for i in range(1, convs + 1):
            kernel = glorot(rng, 9 * channels, 9 * filters, (3, 3, channels, filters))
            bias = rng.uniform(-0.05, 0.05, filters).astype(np.float32)
            layers.append((f"{name}_conv{i}", "conv", {"kernel": kernel, "bias": bias}))
            channels = filters
    side = image // (2 ** len(blocks))
    features = side * side * channels
    layers.append(("dense", "dense", {"kernel": glorot(rng, features, units, (features, units)),
                                      "bias": rng.uniform(-0.05, 0.05, units).astype(np.float32)}))
    layers.append(("batch_normalization", "bn", {
        "gamma": rng.uniform(0.5, 1.5, units).astype(np.float32),
        "beta": rng.uniform(-0.2, 0.2, units).astype(np.float32),
        "moving_mean": rng.uniform(-0.2, 0.2, units).astype(np.float32),
        "moving_variance": rng.uniform(0.5, 1.5, units).astype(np.float32)}))
    layers.append(("dense_1", "dense", {"kernel": glorot(rng, units, classes, (units, classes)),
                                        "bias": rng.uniform(-0.05, 0.05, classes).astype(np.float32)}))
    return layers, (side, side, channels)


def conv_layers(blocks):
    return [(name, [f"{name}_conv{i}" for i in range(1, convs + 1)]) for name, _, convs in blocks]


def tf2onnx_model(layers, blocks, image):
    p = "model/"
    weights = {name: values for name, _, values in layers}
    nodes, inits = [], []
    batch = "unk__618"

    def init(name, array):
        inits.append(numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    nodes.append(helper.make_node("Transpose", ["input_1"], ["input_1_nchw"], name=p + "block1_conv1/Conv2D__6", perm=[0, 3, 1, 2]))
    x = "input_1_nchw"
    for block, convs in conv_layers(blocks):
        for layer in convs:
            kernel = init(p + f"{layer}/Conv2D/ReadVariableOp:0", weights[layer]["kernel"].transpose(3, 2, 0, 1))
            bias = init(p + f"{layer}/BiasAdd/ReadVariableOp:0", weights[layer]["bias"])
            nodes.append(helper.make_node("Conv", [x, kernel, bias], [p + f"{layer}/BiasAdd:0"], name=p + f"{layer}/BiasAdd",
                                          kernel_shape=[3, 3], strides=[1, 1], dilations=[1, 1], pads=[1, 1, 1, 1]))
            nodes.append(helper.make_node("Relu", [p + f"{layer}/BiasAdd:0"], [p + f"{layer}/Relu:0"], name=p + f"{layer}/Relu"))
            x = p + f"{layer}/Relu:0"
        pool = f"{block}_pool"
        nodes.append(helper.make_node("MaxPool", [x], [p + f"{pool}/MaxPool:0"], name=p + f"{pool}/MaxPool",
                                      kernel_shape=[2, 2], strides=[2, 2]))
        x = p + f"{pool}/MaxPool:0"
    last_pool = f"{blocks[-1][0]}_pool"
    nodes.append(helper.make_node("Transpose", [x], [p + f"{last_pool}/MaxPool__28:0"], name=p + f"{last_pool}/MaxPool__28", perm=[0, 2, 3, 1]))
    x = p + f"{last_pool}/MaxPool__28:0"
    # Keras Flatten: Reshape to [batch, -1] with the batch read from the input's shape.
    init("const_zero__30", np.array(0, dtype=np.int64))
    init("const_axes__31", np.array([0], dtype=np.int64))
    init("const_fold_opt__32", np.array([-1], dtype=np.int64))
    nodes += [
        helper.make_node("Shape", [x], [p + "flatten/Shape:0"], name=p + "flatten/Shape"),
        helper.make_node("Gather", [p + "flatten/Shape:0", "const_zero__30"], [p + "flatten/strided_slice:0"], name=p + "flatten/strided_slice", axis=0),
        helper.make_node("Unsqueeze", [p + "flatten/strided_slice:0", "const_axes__31"], [p + "flatten/Reshape/shape_Unsqueeze__29:0"], name=p + "flatten/Reshape/shape_Unsqueeze__29"),
        helper.make_node("Concat", [p + "flatten/Reshape/shape_Unsqueeze__29:0", "const_fold_opt__32"], [p + "flatten/Reshape/shape:0"], name=p + "flatten/Reshape/shape", axis=0),
        helper.make_node("Reshape", [x, p + "flatten/Reshape/shape:0"], [p + "flatten/Reshape:0"], name=p + "flatten/Reshape"),
    ]
    x = p + "flatten/Reshape:0"

    def dense(layer, x, out):
        kernel = init(p + f"{layer}/MatMul/ReadVariableOp:0", weights[layer]["kernel"])
        bias = init(p + f"{layer}/BiasAdd/ReadVariableOp:0", weights[layer]["bias"])
        nodes.append(helper.make_node("MatMul", [x, kernel], [p + f"{layer}/MatMul:0"], name=p + f"{layer}/MatMul"))
        nodes.append(helper.make_node("Add", [p + f"{layer}/MatMul:0", bias], [out], name=p + f"{layer}/BiasAdd"))
        return out

    x = dense("dense", x, p + "dense/BiasAdd:0")
    bn = weights["batch_normalization"]
    scale = bn["gamma"] / np.sqrt(bn["moving_variance"] + KERAS_EPSILON)
    shift = bn["beta"] - bn["moving_mean"] * scale
    bn_name = "batch_normalization"
    init(p + f"{bn_name}/batchnorm/mul:0", scale.astype(np.float32))
    init(p + f"{bn_name}/batchnorm/sub:0", shift.astype(np.float32))
    nodes += [
        helper.make_node("Mul", [x, p + f"{bn_name}/batchnorm/mul:0"], [p + f"{bn_name}/batchnorm/mul_1:0"], name=p + f"{bn_name}/batchnorm/mul_1"),
        helper.make_node("Add", [p + f"{bn_name}/batchnorm/mul_1:0", p + f"{bn_name}/batchnorm/sub:0"], [p + f"{bn_name}/batchnorm/add_1:0"], name=p + f"{bn_name}/batchnorm/add_1"),
        helper.make_node("Relu", [p + f"{bn_name}/batchnorm/add_1:0"], [p + "activation/Relu:0"], name=p + "activation/Relu"),
    ]
    dense("dense_1", p + "activation/Relu:0", "logits")
    nodes.append(helper.make_node("Softmax", ["logits"], ["softmax"], name=p + "dense_1/Softmax", axis=-1))
    classes = weights["dense_1"]["kernel"].shape[1]
    graph = helper.make_graph(
        nodes, "tf2onnx",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, [batch, image, image, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes]),
         helper.make_tensor_value_info("softmax", TensorProto.FLOAT, [batch, classes])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="tf2onnx", producer_version="1.16.1")
    model.ir_version = 8
    return model


def pytorch_model(layers, blocks, image):
    weights = {name: values for name, _, values in layers}
    nodes, inits = [], []

    def init(name, array):
        inits.append(numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    x, index = "input", 0
    for block, convs in conv_layers(blocks):
        for layer in convs:
            w = init(f"features.{index}.weight", weights[layer]["kernel"].transpose(3, 2, 0, 1))
            b = init(f"features.{index}.bias", weights[layer]["bias"])
            nodes.append(helper.make_node("Conv", [x, w, b], [f"/features/features.{index}/Conv_output_0"], name=f"/features/features.{index}/Conv",
                                          kernel_shape=[3, 3], strides=[1, 1], dilations=[1, 1], pads=[1, 1, 1, 1], group=1))
            nodes.append(helper.make_node("Relu", [f"/features/features.{index}/Conv_output_0"], [f"/features/features.{index + 1}/Relu_output_0"], name=f"/features/features.{index + 1}/Relu"))
            x = f"/features/features.{index + 1}/Relu_output_0"
            index += 2
        nodes.append(helper.make_node("MaxPool", [x], [f"/features/features.{index}/MaxPool_output_0"], name=f"/features/features.{index}/MaxPool",
                                      kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0], ceil_mode=0))
        x = f"/features/features.{index}/MaxPool_output_0"
        index += 1
    nodes.append(helper.make_node("Flatten", [x], ["/Flatten_output_0"], name="/Flatten", axis=1))
    # A Keras [in,out] kernel whose rows follow NHWC flattening becomes a torch [out,in] weight
    # whose columns follow NCHW flattening (what the PyTorch model would have learnt).
    dense = weights["dense"]["kernel"]
    features, units = dense.shape
    pooled = image // (2 ** len(blocks))
    filters = blocks[-1][1]
    nchw_rows = dense.reshape(pooled, pooled, filters, units).transpose(2, 0, 1, 3).reshape(features, units)
    init("classifier.0.weight", nchw_rows.T)
    init("classifier.0.bias", weights["dense"]["bias"])
    bn = weights["batch_normalization"]
    # BatchNorm1d uses epsilon 1e-5; rescale gamma so it computes Keras's function (epsilon 1e-3).
    gamma = bn["gamma"] * np.sqrt(bn["moving_variance"] + TORCH_EPSILON) / np.sqrt(bn["moving_variance"] + KERAS_EPSILON)
    init("classifier.1.weight", gamma.astype(np.float32))
    init("classifier.1.bias", bn["beta"])
    init("classifier.1.running_mean", bn["moving_mean"])
    init("classifier.1.running_var", bn["moving_variance"])
    init("classifier.3.weight", weights["dense_1"]["kernel"].T)
    init("classifier.3.bias", weights["dense_1"]["bias"])
    nodes += [
        helper.make_node("Gemm", ["/Flatten_output_0", "classifier.0.weight", "classifier.0.bias"], ["/classifier/classifier.0/Gemm_output_0"],
                         name="/classifier/classifier.0/Gemm", alpha=1.0, beta=1.0, transB=1),
        helper.make_node("BatchNormalization", ["/classifier/classifier.0/Gemm_output_0", "classifier.1.weight", "classifier.1.bias",
                                                "classifier.1.running_mean", "classifier.1.running_var"],
                         ["/classifier/classifier.1/BatchNormalization_output_0"], name="/classifier/classifier.1/BatchNormalization",
                         epsilon=TORCH_EPSILON, momentum=0.9),
        helper.make_node("Relu", ["/classifier/classifier.1/BatchNormalization_output_0"], ["/classifier/classifier.2/Relu_output_0"], name="/classifier/classifier.2/Relu"),
        helper.make_node("Gemm", ["/classifier/classifier.2/Relu_output_0", "classifier.3.weight", "classifier.3.bias"], ["logits"],
                         name="/classifier/classifier.3/Gemm", alpha=1.0, beta=1.0, transB=1),
        helper.make_node("Softmax", ["logits"], ["softmax"], name="/Softmax", axis=1),
    ]
    classes = weights["dense_1"]["kernel"].shape[1]
    graph = helper.make_graph(
        nodes, "main_graph",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", 3, image, image])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", classes]),
         helper.make_tensor_value_info("softmax", TensorProto.FLOAT, ["batch_size", classes])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="pytorch", producer_version="2.5.0")
    model.ir_version = 8
    return model


def pytorch_dynamo_model(layers, blocks, image):
    """The TorchScript form with torch.flatten as Reshape and BatchNorm1d folded into the Gemm."""
    model = pytorch_model(layers, blocks, image)
    graph = model.graph
    inits = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    scale = inits["classifier.1.weight"] / np.sqrt(inits["classifier.1.running_var"] + TORCH_EPSILON)
    folded = {
        "classifier.0.weight": (inits["classifier.0.weight"] * scale[:, None]).astype(np.float32),
        "classifier.0.bias": ((inits["classifier.0.bias"] - inits["classifier.1.running_mean"]) * scale + inits["classifier.1.bias"]).astype(np.float32),
        "val_14": np.array([-1, blocks[-1][1] * (image // 2 ** len(blocks)) ** 2], dtype=np.int64),
    }
    kept = [name for name in inits if not name.startswith("classifier.1.")] + ["val_14"]
    del graph.initializer[:]
    graph.initializer.extend(numpy_helper.from_array(folded.get(name, inits.get(name)), name) for name in kept)
    nodes = []
    for node in graph.node:
        if node.op_type == "Flatten":
            node = helper.make_node("Reshape", [node.input[0], "val_14"], list(node.output), name="node_Reshape_15")
        elif node.op_type == "BatchNormalization":
            continue
        elif node.name == "/classifier/classifier.2/Relu":
            node = helper.make_node("Relu", ["/classifier/classifier.0/Gemm_output_0"], list(node.output), name=node.name)
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def run_reference(path, feed):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return session.run(["logits", "softmax"], feed)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    parser.add_argument("--mini", action="store_true", help="the small test network (16x16x3, two conv blocks)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    if args.mini:
        blocks, image, units, batches = MINI_BLOCKS, 16, 8, [2]
    else:
        blocks, image, units, batches = VGG16_BLOCKS, 224, 256, [1, 8]
    layers, _ = make_weights(rng, blocks, image, units, 10 if not args.mini else 3)
    models = {"tf2onnx": tf2onnx_model(layers, blocks, image), "pytorch": pytorch_model(layers, blocks, image),
              "pytorch_dynamo": pytorch_dynamo_model(layers, blocks, image)}
    for name, model in models.items():
        onnx.checker.check_model(model)
        onnx.save(model, os.path.join(args.out_dir, f"{name}.onnx"))
    for batch in batches:
        # Pixels as Keras's VGG16 preprocessing leaves them (mean-subtracted, about ±128): with
        # Glorot weights, smaller inputs fade through 13 ReLU convolutions and the logits would
        # hardly depend on the image, hiding layout mistakes.
        nhwc = rng.uniform(-128, 128, size=(batch, image, image, 3)).astype(np.float32)
        nchw = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
        np.save(os.path.join(args.out_dir, f"input_b{batch}.npy"), nhwc)
        if not args.mini:   # the tests feed the NHWC input only
            np.save(os.path.join(args.out_dir, f"input_b{batch}_nchw.npy"), nchw)
        for name, feed in [("tf2onnx", {"input_1": nhwc}), ("pytorch", {"input": nchw}), ("pytorch_dynamo", {"input": nchw})]:
            logits, softmax = run_reference(os.path.join(args.out_dir, f"{name}.onnx"), feed)
            np.save(os.path.join(args.out_dir, f"{name}_b{batch}_logits.npy"), logits)
            np.save(os.path.join(args.out_dir, f"{name}_b{batch}_softmax.npy"), softmax)
    print(f"wrote {', '.join(models)} models and references for batches {batches} to {args.out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
