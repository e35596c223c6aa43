#!/usr/bin/env python3
"""Builds the benchmark model zoo: the backbones transfer-learning users bring, exported to ONNX the way
they export them, with random weights and realistic BatchNorm statistics, plus ONNX Runtime references.

Keras applications (tf_keras) go through tf2onnx (opset 17, NHWC, symbolic batch); torchvision models
through torch.onnx.export (the TorchScript exporter, dynamo=False, opset 17, and the dynamo exporter
where it works). Each model gets seeded inputs at batch 1 and 8 and ORT's outputs for them.

Random weights alone make activations vanish or explode through 50-odd BatchNorm layers, which a real
model never does. So each model first runs once on a calibration batch with every BatchNorm in
training mode and momentum set to take that batch's statistics whole: every moving mean and variance
is then its own input's statistics, as after training.

Writes into --output (default models/zoo, ignored by git):
    <name>.onnx, <name>.input_b<batch>.npy, <name>.ort_b<batch>.npy, manifest.json
manifest.json lists every model with its input name and shape, or why it could not be built.
Run it through tools/zoo/build.sh, which makes its own virtual environment.
"""
import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BATCHES = (1, 8)

# name, Keras application, input side, head, input range (the model's own preprocessing expectation).
# head: "top" = Keras's include_top classifier, "transfer" = GAP -> Dropout -> Dense(10) softmax on
# include_top=False, "none" = the bare backbone (include_top=False, no pooling).
KERAS_MODELS = [
    ("keras_vgg16_notop", "VGG16", 224, "none", (-120.0, 135.0)),
    ("keras_resnet50", "ResNet50", 224, "top", (-120.0, 135.0)),
    ("keras_mobilenetv2", "MobileNetV2", 224, "transfer", (-1.0, 1.0)),
    ("keras_efficientnetb0", "EfficientNetB0", 224, "top", (0.0, 255.0)),
    ("keras_xception", "Xception", 299, "transfer", (-1.0, 1.0)),
    ("keras_inceptionv3", "InceptionV3", 299, "top", (-1.0, 1.0)),
    ("keras_densenet121", "DenseNet121", 224, "transfer", (-2.0, 2.5)),
]

TORCH_MODELS = ["resnet50", "mobilenet_v2", "efficientnet_b0", "convnext_tiny", "densenet121"]
# Backbones exported for their features (the classifier dropped, the NCHW feature map the output), as
# a feature extractor for transfer learning is exported; TorchScript exporter.
TORCH_FEATURE_MODELS = ["resnet50", "mobilenet_v2"]


def inputs_for(name, shape, value_range, seed):
    """Seeded inputs per batch, the same for every engine."""
    low, high = value_range
    result = {}
    for batch in BATCHES:
        rng = np.random.default_rng(seed + batch)
        result[batch] = rng.uniform(low, high, (batch, *shape)).astype(np.float32)
    return result


def build_keras(name, application, side, head, value_range, output, seed):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf_keras as keras
    import tf2onnx

    keras.utils.set_random_seed(seed)
    constructor = getattr(keras.applications, application)
    shape = (side, side, 3)
    if head == "top":
        model = constructor(weights=None, include_top=True, input_shape=shape)
    else:
        base = constructor(weights=None, include_top=False, input_shape=shape)
        if head == "none":
            model = base
        else:
            x = keras.layers.GlobalAveragePooling2D(name="gap")(base.output)
            x = keras.layers.Dropout(0.2, name="dropout")(x)
            x = keras.layers.Dense(10, activation="softmax", name="predictions")(x)
            model = keras.Model(base.input, x, name=f"{application}_transfer")
    calibration = inputs_for(name, shape, value_range, seed + 100)[8]
    batch_norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    rng = np.random.default_rng(seed)
    for layer in batch_norms:
        # InceptionV3's BatchNorms have no gamma (scale=False).
        if layer.gamma is not None:
            layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape).astype(np.float32))
        if layer.beta is not None:
            layer.beta.assign(rng.uniform(-0.2, 0.2, layer.beta.shape).astype(np.float32))
        layer.momentum = 0.0
    if batch_norms:
        model(calibration, training=True)
    spec = (tf.TensorSpec((None, *shape), tf.float32, name="input"),)
    path = output / f"{name}.onnx"
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=str(path))
    return path, "input", shape


def build_torch(name, architecture, dynamo, features, output, seed):
    import torch
    import torchvision

    torch.manual_seed(seed)
    model = getattr(torchvision.models, architecture)(weights=None)
    batch_norms = [module for module in model.modules() if isinstance(module, torch.nn.BatchNorm2d)]
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in batch_norms:
            module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
            module.bias.copy_(torch.rand(module.bias.shape, generator=generator) * 0.4 - 0.2)
            module.momentum = 1.0
        if batch_norms:
            model.train()
            model(torch.from_numpy(inputs_for(name, (3, 224, 224), (-2.0, 2.5), seed + 100)[8]))
    model.eval()
    if features:
        model = model.features if hasattr(model, "features") else torch.nn.Sequential(*list(model.children())[:-2])
    example = torch.zeros(1, 3, 224, 224)
    path = output / f"{name}.onnx"
    if dynamo:
        # torch.export specialises a batch of 1 in the example (convnext_tiny then fails to export
        # with a symbolic batch), so the dynamo exporter traces with 2.
        batch = torch.export.Dim("batch", min=1, max=64)
        program = torch.onnx.export(model, (torch.zeros(2, 3, 224, 224),), dynamo=True, input_names=["input"],
                                    output_names=["output"], dynamic_shapes=({0: batch},), opset_version=18)
        program.save(str(path))
    else:
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=17, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    return path, "input", (3, 224, 224)


def record_references(name, path, input_name, shape, value_range, output, seed):
    """Inputs and ONNX Runtime outputs at every benchmark batch."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, values in inputs_for(name, shape, value_range, seed).items():
        np.save(output / f"{name}.input_b{batch}.npy", values)
        np.save(output / f"{name}.ort_b{batch}.npy", session.run(None, {input_name: values})[0])


def build_one(kind, name, output, seed):
    """Runs in its own process (TensorFlow and torch do not share one well); prints a manifest entry."""
    start = time.time()
    if kind == "keras":
        _, application, side, head, value_range = next(m for m in KERAS_MODELS if m[0] == name)
        path, input_name, shape = build_keras(name, application, side, head, value_range, output, seed)
        description = f"Keras {application} ({head}, {side}×{side}), tf2onnx opset 17, NHWC"
    else:
        architecture = name.removeprefix("torch_").removesuffix("_dynamo").removesuffix("_features")
        dynamo, features = name.endswith("_dynamo"), name.endswith("_features")
        value_range = (-2.0, 2.5)
        path, input_name, shape = build_torch(name, architecture, dynamo, features, output, seed)
        description = (f"torchvision {architecture}" + (" features (NCHW map out)" if features else "")
                       + ", torch.onnx.export " + ("dynamo=True" if dynamo else "dynamo=False opset 17"))
    record_references(name, path, input_name, shape, value_range, output, seed)
    print(json.dumps({"name": name, "file": path.name, "input": input_name, "shape": list(shape),
                      "description": description, "build_s": round(time.time() - start, 1)}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=str(ROOT / "models" / "zoo"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="build only these names")
    parser.add_argument("--rebuild", action="store_true", help="rebuild models that exist already")
    arguments = parser.parse_args()
    output = Path(arguments.output)
    output.mkdir(parents=True, exist_ok=True)
    wanted = [("keras", m[0]) for m in KERAS_MODELS]
    wanted += [("torch", f"torch_{a}{suffix}") for a in TORCH_MODELS for suffix in ("", "_dynamo")]
    wanted += [("torch", f"torch_{a}_features") for a in TORCH_FEATURE_MODELS]
    if arguments.only:
        unknown = set(arguments.only) - {name for _, name in wanted}
        if unknown:
            sys.exit(f"error: unknown model name(s) {', '.join(sorted(unknown))}")
        wanted = [(kind, name) for kind, name in wanted if name in arguments.only]
    manifest_path = output / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    import subprocess
    for kind, name in wanted:
        if not arguments.rebuild and manifest.get(name, {}).get("file") and (output / f"{name}.ort_b8.npy").exists():
            print(f"{name}: present")
            continue
        print(f"{name}: building", flush=True)
        result = subprocess.run([sys.executable, __file__, "--build-one", kind, name, str(output), str(arguments.seed)],
                                capture_output=True, text=True)
        lines = result.stdout.strip().splitlines()
        if result.returncode == 0 and lines:
            manifest[name] = json.loads(lines[-1])
            print(f"{name}: built in {manifest[name]['build_s']} s")
        else:
            reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
            manifest[name] = {"name": name, "error": reason}
            print(f"{name}: FAILED: {reason}")
        manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--build-one":
        try:
            build_one(sys.argv[2], sys.argv[3], Path(sys.argv[4]), int(sys.argv[5]))
        except Exception:
            traceback.print_exc()
            sys.exit(1)
    else:
        main()
