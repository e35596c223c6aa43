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

# The held-out set (--set wider, into models/wider): backbones, ops and input sizes the benchmark set
# does not have (grouped convolutions, channel shuffles, hard-swish, fire modules, window attention,
# non-square and non-default inputs, Swin V2's cosine attention, MaxViT's Einsum products), to check
# that what was tuned on the set holds beyond it. Keras's ConvNeXtTiny is not here: tf2onnx leaves its depthwise convolutions as TensorFlow PartitionedCall
# nodes, which no ONNX runtime loads.
WIDER_KERAS_MODELS = [
    ("keras_resnet50v2", "ResNet50V2", 224, "top", (-1.0, 1.0)),
    ("keras_resnet101", "ResNet101", 224, "transfer", (-120.0, 135.0)),
    ("keras_vgg19_notop", "VGG19", 224, "none", (-120.0, 135.0)),
    ("keras_mobilenetv3large", "MobileNetV3Large", 224, "transfer", (0.0, 255.0)),
    ("keras_mobilenetv3small", "MobileNetV3Small", 224, "top", (0.0, 255.0)),
    ("keras_efficientnetv2b0", "EfficientNetV2B0", 224, "top", (0.0, 255.0)),
    ("keras_efficientnetb3", "EfficientNetB3", 300, "transfer", (0.0, 255.0)),
    ("keras_inceptionresnetv2", "InceptionResNetV2", 299, "transfer", (-1.0, 1.0)),
    ("keras_nasnetmobile", "NASNetMobile", 224, "top", (-1.0, 1.0)),
    ("keras_densenet169", "DenseNet169", 224, "transfer", (-2.0, 2.5)),
    ("keras_resnet50_160", "ResNet50", 160, "transfer", (-120.0, 135.0)),
    ("keras_mobilenetv2_192x256", "MobileNetV2", (192, 256), "transfer", (-1.0, 1.0)),
    ("keras_xception_224", "Xception", 224, "transfer", (-1.0, 1.0)),
]
# torchvision architecture, input (height, width), exporter ("legacy" or "dynamo").
WIDER_TORCH_MODELS = [
    ("resnet18", (224, 224), "legacy"),
    ("resnext50_32x4d", (224, 224), "legacy"),
    ("regnet_y_400mf", (224, 224), "legacy"),
    ("regnet_x_1_6gf", (224, 224), "dynamo"),
    ("mobilenet_v3_large", (224, 224), "legacy"),
    ("mobilenet_v3_small", (224, 224), "dynamo"),
    ("shufflenet_v2_x1_0", (224, 224), "legacy"),
    ("squeezenet1_1", (224, 224), "legacy"),
    ("googlenet", (224, 224), "legacy"),
    ("mnasnet1_0", (224, 224), "legacy"),
    ("efficientnet_v2_s", (224, 224), "legacy"),
    ("vgg16_bn", (224, 224), "legacy"),
    ("inception_v3", (299, 299), "legacy"),
    ("swin_t", (224, 224), "legacy"),
    ("swin_t", (224, 224), "dynamo"),
    ("resnet50", (256, 192), "dynamo"),
    ("wide_resnet50_2", (224, 224), "legacy"),
    ("shufflenet_v2_x1_0", (224, 224), "dynamo"),
    ("swin_v2_t", (256, 256), "legacy"),
    ("maxvit_t", (224, 224), "legacy"),
]


# A third set (--set extra, into models/extra): more backbones a user may swap in, none of them tuned
# on, timed as a check of the other two (BENCHMARKS.md, "backbones outside both sets"). Keras's
# RegNetX002 and RegNetY008 are not here: tf2onnx writes graphs ONNX Runtime rejects.
EXTRA_KERAS_MODELS = [
    ("keras_densenet201", "DenseNet201", 224, "transfer", (-2.0, 2.5)),
    ("keras_efficientnetb1", "EfficientNetB1", 240, "top", (0.0, 255.0)),
    ("keras_efficientnetv2s", "EfficientNetV2S", 384, "transfer", (0.0, 255.0)),
    ("keras_inceptionv3_224", "InceptionV3", 224, "transfer", (-1.0, 1.0)),
    ("keras_mobilenet", "MobileNet", 224, "transfer", (-1.0, 1.0)),
    ("keras_mobilenetv3small_160", "MobileNetV3Small", 160, "transfer", (0.0, 255.0)),
    ("keras_resnet152v2", "ResNet152V2", 224, "top", (-1.0, 1.0)),
]
EXTRA_TORCH_MODELS = [
    ("alexnet", (224, 224), "legacy"),
    ("convnext_small", (224, 224), "legacy"),
    ("densenet201", (224, 224), "legacy"),
    ("efficientnet_b1", (240, 240), "legacy"),
    ("efficientnet_b3", (300, 300), "dynamo"),
    ("googlenet", (224, 224), "dynamo"),
    ("maxvit_t", (224, 224), "legacy"),
    ("mnasnet0_5", (224, 224), "legacy"),
    ("mobilenet_v3_small", (224, 224), "legacy"),
    ("regnet_y_800mf", (224, 224), "dynamo"),
    ("resnet34", (224, 224), "dynamo"),
    ("shufflenet_v2_x2_0", (224, 224), "dynamo"),
    ("swin_v2_t", (256, 256), "legacy"),
    ("vit_b_16", (224, 224), "dynamo"),
    ("vit_b_32", (224, 224), "legacy"),
]

# A fourth set (--set timm, into models/timm): timm's backbones, the ones transfer-learning users most
# often fine-tune from, exported with torch.onnx.export (dynamo=False, opset 17) at each model's own
# input size. Their ops are timm's own: TensorFlow-style "SAME" padding computed in floats, weight-
# standardised filters (NF-Nets), Fourier positional encodings (XCiT), attention biases (LeViT),
# unfold/fold by reshapes (MobileViT), pooling token mixers (PoolFormer), reparameterised blocks.
# EdgeNeXt's positional encoding fills a mask of the run-time batch's shape and numbers its pixels
# with CumSum (the importer expands a constant; expand sinking lets constant folding compute it).
# Not here: EVA-02 (its export fails in torch), ConvMixer and LeViT (random weights make their
# fp32 outputs chaotic: against PyTorch's own fp64 output ConvMixer's fp32 one misses by 1.2× the
# tolerance; LeViT-128S's, on one of 8 images, by 11×, ONNX Runtime's by 18×, Keel's by 43×).
TIMM_MODELS = [
    "resnet50d", "tf_efficientnet_b0", "regnety_016", "convnext_nano", "vit_small_patch16_224", "deit_small_patch16_224",
    "mobilevit_s", "efficientformer_l1", "fastvit_t8", "poolformer_s12", "caformer_s18", "coatnet_0_rw_224",
    "nf_resnet50", "xcit_nano_12_p16_224", "pvt_v2_b0", "ghostnet_100", "rexnet_100", "cspdarknet53", "hrnet_w18_small",
    "res2net50_26w_4s", "resnest50d", "efficientvit_b0", "mobilenetv4_conv_small", "mixnet_s", "repvgg_a2", "edgenext_small", "gcvit_xxtiny", "crossvit_tiny_240", "ecaresnet26t", "hiera_tiny_224",
]

# A fifth set (--set free, into models/free): exports that leave the image's height and width
# symbolic, as users get them from a Keras backbone built without an input size (tf2onnx writes
# [?,?,?,3]) or from PyTorch's dynamic axes on them, timed at sizes no other set uses. ONNX Runtime
# and OpenVINO run the file as it is; Keel plans for the size of the input it is given.
# name, kind, architecture, Keras head or torch exporter, input (height, width), input range.
FREE_MODELS = [
    ("keras_vgg16_notop_free", "keras", "VGG16", "none", (200, 260), (-120.0, 135.0)),
    ("keras_resnet50_free", "keras", "ResNet50", "transfer", (230, 190), (-120.0, 135.0)),
    ("keras_efficientnetb0_free", "keras", "EfficientNetB0", "transfer", (230, 190), (0.0, 255.0)),
    ("torch_resnet50_free", "torch", "resnet50", "legacy", (256, 320), (-2.0, 2.5)),
    ("torch_mobilenet_v3_large_free_dynamo", "torch", "mobilenet_v3_large", "dynamo", (200, 264), (-2.0, 2.5)),
]


def wider_torch_name(architecture, size, exporter):
    suffix = "" if size == (224, 224) else f"_{size[0]}x{size[1]}"
    return f"torch_{architecture}{suffix}" + ("_dynamo" if exporter == "dynamo" else "")


def inputs_for(name, shape, value_range, seed):
    """Seeded inputs per batch, the same for every engine."""
    low, high = value_range
    result = {}
    for batch in BATCHES:
        rng = np.random.default_rng(seed + batch)
        result[batch] = rng.uniform(low, high, (batch, *shape)).astype(np.float32)
    return result


def build_keras(name, application, side, head, value_range, output, seed, free=False):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf_keras as keras
    import tf2onnx

    keras.utils.set_random_seed(seed)
    constructor = getattr(keras.applications, application)
    height, width = side if isinstance(side, tuple) else (side, side)
    shape = (height, width, 3)
    if head == "top":
        model = constructor(weights=None, include_top=True, input_shape=shape)
    else:
        base = constructor(weights=None, include_top=False, input_shape=(None, None, 3) if free else shape)
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
    spec = (tf.TensorSpec((None, None, None, 3) if free else (None, *shape), tf.float32, name="input"),)
    path = output / f"{name}.onnx"
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=str(path))
    return path, "input", shape


def calibrate_batch_norms(model, name, shape, seed):
    """Random BatchNorm scales and shifts, then the statistics of one calibration batch (see above)."""
    import torch

    batch_norms = [module for module in model.modules() if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)]
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in batch_norms:
            if module.weight is not None:
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(module.bias.shape, generator=generator) * 0.4 - 0.2)
            module.momentum = 1.0
        if batch_norms:
            model.train()
            model(torch.from_numpy(inputs_for(name, shape, (-2.0, 2.5), seed + 100)[8]))
    model.eval()


def build_torch(name, architecture, dynamo, features, output, seed, size=(224, 224), free=False):
    import torch
    import torchvision

    torch.manual_seed(seed)
    # GoogLeNet and Inception v3 build auxiliary classifiers unless told not to (eval ignores them).
    options = {"aux_logits": False, "init_weights": True} if architecture in ("googlenet", "inception_v3") else {}
    model = getattr(torchvision.models, architecture)(weights=None, **options)
    shape = (3, *size)
    calibrate_batch_norms(model, name, shape, seed)
    if features:
        model = model.features if hasattr(model, "features") else torch.nn.Sequential(*list(model.children())[:-2])
    return export_torch(model, name, shape, dynamo, output, free)


def build_timm(name, architecture, output, seed):
    import timm
    import torch

    torch.manual_seed(seed)
    model = timm.create_model(architecture, pretrained=False)
    shape = tuple(model.pretrained_cfg.get("input_size", (3, 224, 224)))
    calibrate_batch_norms(model, name, shape, seed)
    return export_torch(model, name, shape, False, output)


def export_torch(model, name, shape, dynamo, output, free=False):
    """`free` leaves the height and width symbolic too."""
    import torch

    example = torch.zeros(1, *shape)
    path = output / f"{name}.onnx"
    if dynamo:
        # torch.export specialises a batch of 1 in the example (convnext_tiny then fails to export
        # with a symbolic batch), so the dynamo exporter traces with 2.
        axes = {0: torch.export.Dim("batch", min=1, max=64)}
        if free:
            axes.update({2: torch.export.Dim("height", min=32, max=1024), 3: torch.export.Dim("width", min=32, max=1024)})
        program = torch.onnx.export(model, (torch.zeros(2, *shape),), dynamo=True, input_names=["input"],
                                    output_names=["output"], dynamic_shapes=(axes,), opset_version=18)
        program.save(str(path))
    else:
        axes = {0: "N", 2: "H", 3: "W"} if free else {0: "N"}
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=17, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": axes, "output": {0: "N"}})
    return path, "input", shape


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
    if kind == "free":
        _, framework, architecture, form, size, value_range = next(m for m in FREE_MODELS if m[0] == name)
        if framework == "keras":
            path, input_name, shape = build_keras(name, architecture, size, form, value_range, output, seed, free=True)
        else:
            path, input_name, shape = build_torch(name, architecture, form == "dynamo", False, output, seed, size, free=True)
        description = (f"{'Keras' if framework == 'keras' else 'torchvision'} {architecture} exported with a free height "
                       f"and width ({'tf2onnx [?,?,?,3]' if framework == 'keras' else form + ' exporter'}), run at "
                       f"{size[0]}×{size[1]}")
    elif kind == "timm":
        architecture = name.removeprefix("timm_")
        path, input_name, shape = build_timm(name, architecture, output, seed)
        value_range = (-2.0, 2.5)
        description = f"timm {architecture} ({shape[1]}×{shape[2]}), torch.onnx.export dynamo=False opset 17"
    elif kind == "keras":
        _, application, side, head, value_range = next(m for m in KERAS_MODELS + WIDER_KERAS_MODELS + EXTRA_KERAS_MODELS
                                                       if m[0] == name)
        path, input_name, shape = build_keras(name, application, side, head, value_range, output, seed)
        description = f"Keras {application} ({head}, {shape[0]}×{shape[1]}), tf2onnx opset 17, NHWC"
    else:
        wider = {wider_torch_name(*m): m for m in WIDER_TORCH_MODELS + EXTRA_TORCH_MODELS}
        if name in wider:
            architecture, size, exporter = wider[name]
            dynamo, features = exporter == "dynamo", False
        else:
            architecture = name.removeprefix("torch_").removesuffix("_dynamo").removesuffix("_features")
            dynamo, features, size = name.endswith("_dynamo"), name.endswith("_features"), (224, 224)
        value_range = (-2.0, 2.5)
        path, input_name, shape = build_torch(name, architecture, dynamo, features, output, seed, size)
        description = (f"torchvision {architecture}" + (" features (NCHW map out)" if features else "")
                       + (f" ({size[0]}×{size[1]})" if size != (224, 224) else "")
                       + ", torch.onnx.export " + ("dynamo=True" if dynamo else "dynamo=False opset 17"))
    record_references(name, path, input_name, shape, value_range, output, seed)
    print(json.dumps({"name": name, "file": path.name, "input": input_name, "shape": list(shape),
                      "description": description, "build_s": round(time.time() - start, 1)}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=("benchmark", "wider", "extra", "timm", "free"), default="benchmark",
                        help="the benchmark set (models/zoo), the held-out set (models/wider), the extra one "
                             "(models/extra), timm's backbones (models/timm) or exports with a free image size "
                             "(models/free)")
    parser.add_argument("--output", help="default: models/zoo, or models/<set> for the other sets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="build only these names")
    parser.add_argument("--rebuild", action="store_true", help="rebuild models that exist already")
    arguments = parser.parse_args()
    output = Path(arguments.output or ROOT / "models" / ("zoo" if arguments.set == "benchmark" else arguments.set))
    output.mkdir(parents=True, exist_ok=True)
    if arguments.set == "timm":
        wanted = [("timm", f"timm_{architecture}") for architecture in TIMM_MODELS]
    elif arguments.set == "free":
        wanted = [("free", m[0]) for m in FREE_MODELS]
    elif arguments.set in ("wider", "extra"):
        keras_models, torch_models = ((WIDER_KERAS_MODELS, WIDER_TORCH_MODELS) if arguments.set == "wider"
                                      else (EXTRA_KERAS_MODELS, EXTRA_TORCH_MODELS))
        wanted = [("keras", m[0]) for m in keras_models]
        wanted += [("torch", wider_torch_name(*m)) for m in torch_models]
    else:
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
