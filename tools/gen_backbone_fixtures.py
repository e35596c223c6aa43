#!/usr/bin/env python3
"""Writes small ONNX graphs with the blocks of the backbones users bring, and ONNX Runtime's outputs,
into Tests/KeelCLITests/Fixtures/backbones/ for the end-to-end tests (a few KB each):

- mobilenet_nhwc.onnx: tf2onnx's shape (NHWC input, Transpose to NCHW, NCHW ops, Transpose back):
  a stride-2 stem with ReLU6, an inverted residual block (1×1 expand + ReLU6, 3×3 depthwise +
  ReLU6, 1×1 project, shortcut add), and an EfficientNet block on an odd-sized map (1×1 + swish as
  x·sigmoid(x), explicit Pad + 5×5 stride-2 depthwise + swish, squeeze-excitation, 1×1 project),
  global pooling and a softmax dense head.
- resnet_nchw.onnx: PyTorch's shape (NCHW throughout): 7×7 stride-2 stem + ReLU, 3×3 stride-2
  max pool, a bottleneck with a projection shortcut and one with an identity shortcut (1×1,
  3×3 grouped = 4, 1×1, add, ReLU), a hard-swish 3×3 stride-2 conv on an odd map, global
  pooling, Flatten and Gemm (transB).
- features_nchw.onnx: a PyTorch backbone exported for its features (NCHW throughout, the feature
  map itself the output): 3×3 stride-2 stem + ReLU6, an inverted residual block on an odd map
  (1×1 expand + ReLU6, 3×3 stride-2 depthwise + ReLU6, 1×1 project), a 1×1 conv + ReLU.
- efficientnet_nchw.onnx: PyTorch's EfficientNet blocks (NCHW, swish as x·sigmoid(x), the
  squeeze-excitation gate multiplied first, as torchvision writes it): a stride-2 stem, a block
  without expansion, a stride-2 5×5 block, one with a shortcut, and a stride-2 block on a map too
  small for the gate to be folded into the projection's filter; global pooling and Gemm.

- inception_nhwc.onnx: tf2onnx's shape of Inception blocks on a 24×24 map: a 1×1 branch, 1×1 then
  5×5 (48 → 64, the F(4×4, 5×5) tiles), 1×1 then 1×7 and 7×1 (the line tiles), and a 3×3 average
  pool then 1×1, each with BN + ReLU, concatenated on channels.

- expansion_nhwc.onnx: tf2onnx's shape of two inverted residual blocks on a map large enough
  (64×48, expanded to 96 channels: 1.2 MB an image) for the plan to run each 1×1 expansion band by
  band inside its depthwise layer: ReLU6 and a 3×3 depthwise with a shortcut, then swish, an explicit
  uneven Pad and a 5×5 stride-2 depthwise with squeeze-excitation; between them a block whose
  1×1 layer before the depthwise one has too large a filter (96 → 192) to be fused.

BatchNormalization nodes carry statistics measured on the input, so activations stay O(1).
Run from the repository root: python3 tools/gen_backbone_fixtures.py [name ...] (default: all).
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "KeelCLITests", "Fixtures", "backbones")


class Builder:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.initializers, self.count = [], [], 0

    def name(self, base):
        self.count += 1
        return f"{base}_{self.count}"

    def constant(self, values, base="w"):
        name = self.name(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(values), name))
        return name

    def node(self, op, inputs, **attributes):
        output = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def conv(self, x, cin, cout, kernel, stride=1, pad=None, groups=1, bias=False):
        """`kernel`: a side, or (height, width); `pad` defaults to "same" for odd sides."""
        height, width = (kernel, kernel) if isinstance(kernel, int) else kernel
        pads = [height // 2, width // 2] * 2 if pad is None else [pad] * 4
        weights = self.rng.standard_normal((cout, cin // groups, height, width)).astype(np.float32)
        weights *= np.float32(np.sqrt(2.0 / (cin // groups * height * width)))
        inputs = [x, self.constant(weights)]
        if bias:
            inputs.append(self.constant(self.rng.uniform(-0.1, 0.1, cout).astype(np.float32), "b"))
        return self.node("Conv", inputs, kernel_shape=[height, width], strides=[stride, stride], pads=pads,
                         group=groups)

    def batch_norm(self, x, channels):
        gamma = self.rng.uniform(0.5, 1.5, channels).astype(np.float32)
        beta = self.rng.uniform(-0.2, 0.2, channels).astype(np.float32)
        # Placeholders; `calibrate` replaces them with the statistics of this node's input.
        mean, variance = np.zeros(channels, np.float32), np.ones(channels, np.float32)
        return self.node("BatchNormalization", [x, self.constant(gamma), self.constant(beta), self.constant(mean, "mean"),
                                                self.constant(variance, "var")], epsilon=1e-3)

    def relu6(self, x):
        return self.node("Clip", [x, self.constant(np.float32(0)), self.constant(np.float32(6))])

    def swish(self, x):
        return self.node("Mul", [x, self.node("Sigmoid", [x])])

    def model(self, name, input_shape, output, output_shape):
        graph = helper.make_graph(self.nodes, name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, input_shape)],
                                  [helper.make_tensor_value_info(output, TensorProto.FLOAT, output_shape)],
                                  self.initializers)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="keel-fixtures")


def calibrate(model, feed):
    """Sets every BatchNormalization's mean and variance to those of its input on `feed`, in order."""
    initializers = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "BatchNormalization":
            continue
        probe = onnx.ModelProto()
        probe.CopyFrom(model)
        probe.graph.output.extend([helper.make_tensor_value_info(node.input[0], TensorProto.FLOAT, None)])
        session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
        values = session.run([node.input[0]], feed)[0]
        axes = (0, 2, 3)
        for index, statistic in ((3, values.mean(axis=axes)), (4, values.var(axis=axes))):
            initializers[node.input[index]].CopyFrom(numpy_helper.from_array(statistic.astype(np.float32),
                                                                             node.input[index]))


def inverted_residual(b, x, channels, expanded):
    """MobileNetV2's block: 1×1 expand + ReLU6, 3×3 depthwise + ReLU6, 1×1 project, shortcut add."""
    y = b.relu6(b.batch_norm(b.conv(x, channels, expanded, 1), expanded))
    y = b.relu6(b.batch_norm(b.conv(y, expanded, expanded, 3, groups=expanded), expanded))
    return b.node("Add", [b.batch_norm(b.conv(y, expanded, channels, 1), channels), x])


def excited_block(b, x, channels, expanded, squeezed, outputs):
    """EfficientNet's stride-2 block: 1×1 + swish, explicit uneven Pad + 5×5 stride-2 depthwise +
    swish, squeeze-excitation, 1×1 project."""
    y = b.swish(b.batch_norm(b.conv(x, channels, expanded, 1), expanded))
    y = b.node("Pad", [y, b.constant(np.array([0, 0, 1, 1, 0, 0, 2, 2], np.int64), "pads")], mode="constant")
    y = b.swish(b.batch_norm(b.conv(y, expanded, expanded, 5, stride=2, pad=0, groups=expanded), expanded))
    gate = b.swish(b.conv(b.node("GlobalAveragePool", [y]), expanded, squeezed, 1, bias=True))
    y = b.node("Mul", [y, b.node("Sigmoid", [b.conv(gate, squeezed, expanded, 1, bias=True)])])
    return b.batch_norm(b.conv(y, expanded, outputs, 1), outputs)


def mobilenet_nhwc():
    b = Builder(1)
    x = b.node("Transpose", ["input"], perm=[0, 3, 1, 2])
    x = b.relu6(b.batch_norm(b.conv(x, 3, 8, 3, stride=2), 8))
    x = inverted_residual(b, x, 8, 24)
    y = excited_block(b, x, 8, 24, 6, 16)
    y = b.node("Transpose", [y], perm=[0, 2, 3, 1])
    pooled = b.node("ReduceMean", [y], axes=[1, 2], keepdims=0)
    dense = b.node("MatMul", [pooled, b.constant(b.rng.standard_normal((16, 5)).astype(np.float32) * 0.5)])
    dense = b.node("Add", [dense, b.constant(b.rng.uniform(-0.1, 0.1, 5).astype(np.float32), "b")])
    output = b.node("Softmax", [dense], axis=-1)
    return b.model("mobilenet_nhwc", ["N", 23, 21, 3], output, ["N", 5]), (2, 23, 21, 3)


def resnet_nchw():
    b = Builder(2)
    x = b.node("Relu", [b.batch_norm(b.conv("input", 3, 16, 7, stride=2, pad=3), 16)])
    x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])

    def bottleneck(x, cin, width, cout, project):
        y = b.node("Relu", [b.batch_norm(b.conv(x, cin, width, 1), width)])
        y = b.node("Relu", [b.batch_norm(b.conv(y, width, width, 3, groups=4), width)])
        y = b.batch_norm(b.conv(y, width, cout, 1), cout)
        shortcut = b.batch_norm(b.conv(x, cin, cout, 1), cout) if project else x
        return b.node("Relu", [b.node("Add", [y, shortcut])])

    x = bottleneck(x, 16, 8, 32, True)
    x = bottleneck(x, 32, 8, 32, False)
    x = b.node("HardSwish", [b.batch_norm(b.conv(x, 32, 24, 3, stride=2), 24)])
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])])
    output = b.node("Gemm", [x, b.constant(b.rng.standard_normal((7, 24)).astype(np.float32) * 0.3),
                             b.constant(b.rng.uniform(-0.1, 0.1, 7).astype(np.float32), "b")], transB=1)
    return b.model("resnet_nchw", ["N", 3, 37, 35], output, ["N", 7]), (2, 3, 37, 35)


def features_nchw():
    b = Builder(3)
    x = b.relu6(b.batch_norm(b.conv("input", 3, 8, 3, stride=2), 8))
    y = b.relu6(b.batch_norm(b.conv(x, 8, 24, 1), 24))
    y = b.relu6(b.batch_norm(b.conv(y, 24, 24, 3, stride=2, groups=24), 24))
    y = b.batch_norm(b.conv(y, 24, 12, 1), 12)
    output = b.node("Relu", [b.conv(y, 12, 20, 1, bias=True)])
    return b.model("features_nchw", ["N", 3, 29, 27], output, ["N", 20, 8, 7]), (2, 3, 29, 27)


def efficientnet_nchw():
    b = Builder(4)

    def block(x, cin, expanded, cout, kernel, stride, squeezed):
        y = b.swish(b.batch_norm(b.conv(x, cin, expanded, 1), expanded)) if expanded != cin else x
        y = b.swish(b.batch_norm(b.conv(y, expanded, expanded, kernel, stride=stride, groups=expanded), expanded))
        gate = b.swish(b.conv(b.node("GlobalAveragePool", [y]), expanded, squeezed, 1, bias=True))
        gate = b.node("Sigmoid", [b.conv(gate, squeezed, expanded, 1, bias=True)])
        y = b.batch_norm(b.conv(b.node("Mul", [gate, y]), expanded, cout, 1), cout)
        return b.node("Add", [y, x]) if stride == 1 and cin == cout else y

    x = b.swish(b.batch_norm(b.conv("input", 3, 16, 3, stride=2), 16))
    x = block(x, 16, 16, 8, 3, 1, 4)  # 17×16 pixels, 8 outputs: the gate goes into the filter
    x = block(x, 8, 48, 16, 5, 2, 2)  # 9×8 pixels, 16 outputs: likewise
    x = block(x, 16, 64, 16, 3, 1, 4)  # with a shortcut
    x = block(x, 16, 32, 24, 3, 2, 8)  # 5×4 pixels, 24 outputs: a separate multiply
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])])
    output = b.node("Gemm", [x, b.constant(b.rng.standard_normal((5, 24)).astype(np.float32) * 0.3),
                             b.constant(b.rng.uniform(-0.1, 0.1, 5).astype(np.float32), "b")], transB=1)
    return b.model("efficientnet_nchw", ["N", 3, 33, 31], output, ["N", 5]), (2, 3, 33, 31)


def inception_nhwc():
    b = Builder(5)
    x = b.node("Transpose", ["input"], perm=[0, 3, 1, 2])

    def unit(x, cin, cout, kernel):
        return b.node("Relu", [b.batch_norm(b.conv(x, cin, cout, kernel), cout)])

    single = unit(x, 32, 16, 1)
    five = unit(unit(x, 32, 48, 1), 48, 64, 5)
    line = unit(unit(unit(x, 32, 32, 1), 32, 32, (1, 7)), 32, 32, (7, 1))
    pooled = b.node("AveragePool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1],
                    count_include_pad=0)
    pooled = unit(pooled, 32, 8, 1)
    y = b.node("Concat", [single, five, line, pooled], axis=1)
    output = b.node("Transpose", [y], perm=[0, 2, 3, 1])
    return b.model("inception_nhwc", ["N", 24, 24, 32], output, ["N", 24, 24, 120]), (2, 24, 24, 32)


def expansion_nhwc():
    b = Builder(6)
    x = b.node("Transpose", ["input"], perm=[0, 3, 1, 2])
    x = inverted_residual(b, x, 6, 96)
    # A pointwise layer with a large filter (96 → 192, 72 KB) before a depthwise one: kept apart.
    y = b.relu6(b.batch_norm(b.conv(x, 6, 96, 1), 96))
    y = b.relu6(b.batch_norm(b.conv(y, 96, 192, 1), 192))
    y = b.relu6(b.batch_norm(b.conv(y, 192, 192, 3, groups=192), 192))
    x = b.node("Add", [b.batch_norm(b.conv(y, 192, 6, 1), 6), x])
    y = excited_block(b, x, 6, 96, 8, 16)
    output = b.node("Transpose", [y], perm=[0, 2, 3, 1])
    return b.model("expansion_nhwc", ["N", 64, 48, 6], output, ["N", 32, 24, 16]), (2, 64, 48, 6)


def main():
    os.makedirs(OUT, exist_ok=True)
    makers = (mobilenet_nhwc, resnet_nchw, features_nchw, efficientnet_nchw, inception_nhwc, expansion_nhwc)
    for make in [m for m in makers if len(sys.argv) < 2 or m.__name__ in sys.argv[1:]]:
        model, shape = make()
        name = model.graph.name
        feed = {"input": np.random.default_rng(7).uniform(-1, 1, shape).astype(np.float32)}
        calibrate(model, feed)
        onnx.checker.check_model(model)
        onnx.save(model, os.path.join(OUT, f"{name}.onnx"))
        session = ort.InferenceSession(os.path.join(OUT, f"{name}.onnx"), providers=["CPUExecutionProvider"])
        np.save(os.path.join(OUT, f"{name}_input.npy"), feed["input"])
        np.save(os.path.join(OUT, f"{name}_output.npy"), session.run(None, feed)[0])
        print(f"wrote {name}")


if __name__ == "__main__":
    main()
