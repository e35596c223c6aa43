#!/usr/bin/env python3
"""Models whose ONNX shapes depend on the batch, built as a user would export them, checked with Keel.

    tools/zoo/dynamic_models.py build [--only NAME,...]   # exports into models/dynamic/ (ignored)
    tools/zoo/dynamic_models.py check [--only NAME,...]   # runs keel on each at batch 1 and 4
    tools/zoo/dynamic_models.py time [--only NAME,...] [--rounds R] [--baseline KEEL]
                                                          # keel bench against ONNX Runtime

Every model keeps its batch axis symbolic, as both exporters do by default. `build` writes
NAME.onnx, input_b{1,4}.npy and ONNX Runtime's output NAME_b{1,4}.npy (random weights, realistic
BatchNorm statistics). `check` runs `keel run NAME.onnx` and prints one table row per model and
batch: the error Keel gives, or max|keel-ort| against the bound 1e-5 + 1e-3*max|ort|. `time`
runs, per model and batch, R interleaved rounds of `keel bench` (and of a baseline keel binary
when given) and of ONNX Runtime (ORT_ENABLE_ALL, sequential, 2 intra-op threads), each round
`--iterations` runs after 2 warm-ups, and prints each engine's median of round medians (and its
minimum), and ORT / Keel as the median of the per-round ratios (and as the ratio of minima).

Python: $PYTHON when set, else tools/zoo/.venv (created with the packages below on first use).
TensorFlow and PyTorch are never imported into one process (their bundled LLVMs clash): each
model is exported by a child process.
"""
import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "models", "dynamic")
VENV = os.path.join(ROOT, "tools", "zoo", ".venv")
PACKAGES = ["numpy", "onnx", "onnxruntime", "onnxscript", "tensorflow", "tf_keras", "tf2onnx", "torch", "torchvision"]

KERAS_MODELS = ["seed_vit_head", "keras_vit_block", "keras_convnext_blocks", "keras_upsampling"]
TORCH_MODELS = ["vit_b_16_legacy", "vit_b_16_dynamo", "convnext_tiny_legacy", "convnext_tiny_dynamo"]
BATCHES = [1, 4]


def python_executable():
    """$PYTHON, or the ignored venv next to this script (created on demand)."""
    if os.environ.get("PYTHON"):
        return os.environ["PYTHON"]
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([python, "-m", "pip", "install", "--quiet"] + PACKAGES)
    return python


# ---------------------------------------------------------------- Keras (tf2onnx)

def keras_model(name):
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tensorflow as tf
    keras = tf.keras
    layers = keras.layers
    tf.random.set_seed(7)
    # Keras's own "gelu" is 0.5·x·erfc(-x/√2), and tf2onnx has no Erfc: a user writes the erf form.
    def gelu(t):
        return 0.5 * t * (1.0 + tf.math.erf(t / 2.0 ** 0.5))

    if name == "seed_vit_head":
        # Exactly the seed's ViT head: frozen VGG16 -> Conv2D 1x1 -> Reshape(-1,768) -> LayerNormalization.
        vgg16_base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))
        for layer in vgg16_base.layers:
            layer.trainable = False
        inputs = keras.Input(shape=(224, 224, 3))
        features = vgg16_base(inputs)
        features = layers.Conv2D(filters=768, kernel_size=(1, 1), padding="same")(features)
        features = layers.Reshape((-1, 768))(features)
        outputs = layers.LayerNormalization()(features)
        return keras.Model(inputs, outputs), (224, 224, 3)

    if name == "keras_vit_block":
        inputs = keras.Input(shape=(32, 32, 3))
        x = layers.Conv2D(64, 8, strides=8)(inputs)                  # patchify: 4x4 patches
        x = layers.Reshape((-1, 64))(x)
        x = layers.Dense(64)(x)
        y = layers.LayerNormalization(epsilon=1e-6)(x)
        y = layers.MultiHeadAttention(num_heads=4, key_dim=16)(y, y)
        x = layers.Add()([x, y])
        y = layers.LayerNormalization(epsilon=1e-6)(x)
        y = layers.Dense(128, activation=gelu)(y)
        y = layers.Dense(64)(y)
        x = layers.Add()([x, y])
        x = layers.GlobalAveragePooling1D()(x)
        outputs = layers.Dense(10)(x)
        return keras.Model(inputs, outputs), (32, 32, 3)

    if name == "keras_convnext_blocks":
        inputs = keras.Input(shape=(16, 16, 32))
        x = inputs
        for _ in range(2):
            y = layers.DepthwiseConv2D(7, padding="same")(x)
            y = layers.LayerNormalization(epsilon=1e-6)(y)
            y = layers.Dense(128)(y)
            y = layers.Activation(gelu)(y)
            y = layers.Dense(32)(y)
            scale = tf.Variable(tf.random.uniform((32,), 0.5, 1.5))
            y = layers.Lambda(lambda t, s=scale: t * s)(y)             # layer scale
            x = layers.Add()([x, y])
        outputs = layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, outputs), (16, 16, 32)

    if name == "keras_upsampling":
        inputs = keras.Input(shape=(8, 8, 3))
        x = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
        nearest = layers.UpSampling2D(2, interpolation="nearest")(x)
        bilinear = layers.UpSampling2D(2, interpolation="bilinear")(x)
        outputs = layers.Conv2D(4, 3, padding="same")(layers.Concatenate()([nearest, bilinear]))
        return keras.Model(inputs, outputs), (8, 8, 3)

    raise SystemExit(f"unknown Keras model {name}")


def export_keras(name):
    import numpy as np
    model, input_shape = keras_model(name)
    import tensorflow as tf
    import tf2onnx
    path = os.path.join(OUT, name + ".onnx")
    spec = [tf.TensorSpec((None,) + input_shape, tf.float32, name="input")]
    tf2onnx.convert.from_keras(model, input_signature=spec, output_path=path)
    write_inputs_and_references(name, input_shape)


# ---------------------------------------------------------------- PyTorch

def export_torch(name):
    import torch
    import torchvision
    torch.manual_seed(7)
    base, exporter = name.rsplit("_", 1)
    model = getattr(torchvision.models, base)(weights=None).eval()
    with torch.no_grad():
        for module in model.modules():
            # torchvision starts ViT's classifier at zero: random weights make the output informative.
            if isinstance(module, torch.nn.Linear) and not module.weight.any():
                module.weight.normal_(0, 0.02)
                module.bias.uniform_(-0.1, 0.1)
        for module in model.modules():   # realistic statistics rather than 0/1
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    example = torch.randn(1, 3, 224, 224)
    path = os.path.join(OUT, name + ".onnx")
    if exporter == "legacy":
        torch.onnx.export(model, (example,), path, dynamo=False, opset_version=17, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    else:
        # torch.export specialises a batch of 1 in the example, so it traces with 2; the ONNX
        # graph still takes any batch.
        batch = torch.export.Dim("N", max=1024)
        torch.onnx.export(model, (torch.randn(2, 3, 224, 224),), path, dynamo=True, input_names=["input"], output_names=["output"],
                          dynamic_shapes={"x": {0: batch}}, external_data=False)
    write_inputs_and_references(name, (3, 224, 224))


def write_inputs_and_references(name, input_shape):
    import numpy as np
    import onnxruntime as ort
    path = os.path.join(OUT, name + ".onnx")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    rng = np.random.default_rng(11)
    for batch in BATCHES:
        x = rng.standard_normal((batch,) + tuple(input_shape)).astype(np.float32)
        np.save(os.path.join(OUT, f"{name}_input_b{batch}.npy"), x)
        np.save(os.path.join(OUT, f"{name}_b{batch}.npy"), session.run(None, {input_name: x})[0])


# ---------------------------------------------------------------- Driver

def build(names):
    os.makedirs(OUT, exist_ok=True)
    python = python_executable()
    for name in names:
        kind = "keras" if name in KERAS_MODELS else "torch"
        start = time.time()
        result = subprocess.run([python, os.path.abspath(__file__), "export-" + kind, name],
                                capture_output=True, text=True)
        status = "ok" if result.returncode == 0 else "FAILED\n" + result.stderr[-3000:]
        print(f"{name}: {status} ({time.time() - start:.0f} s)", flush=True)


def check(names, keel):
    import numpy as np
    print("| model | batch | Keel | max abs diff | bound |")
    print("|---|---|---|---|---|")
    failures = 0
    for name in names:
        for batch in BATCHES:
            onnx_path = os.path.join(OUT, name + ".onnx")
            output = os.path.join(OUT, f"{name}_keel_b{batch}.npy")
            result = subprocess.run([keel, "run", onnx_path, "--input", os.path.join(OUT, f"{name}_input_b{batch}.npy"),
                                     "--output", output], capture_output=True, text=True)
            if result.returncode != 0:
                message = (result.stderr.strip().splitlines() or ["(no message)"])[-1].replace("|", "\\|")
                print(f"| {name} | {batch} | fails: {message} | | |", flush=True)
                failures += 1
                continue
            got = np.load(output)
            want = np.load(os.path.join(OUT, f"{name}_b{batch}.npy"))
            bound = 1e-5 + 1e-3 * float(np.abs(want).max())
            if got.shape != want.shape:
                print(f"| {name} | {batch} | wrong shape {got.shape}, ORT {want.shape} | | |")
                failures += 1
                continue
            diff = float(np.abs(got - want).max())
            verdict = "matches" if diff <= bound else "MISMATCH"
            failures += diff > bound
            print(f"| {name} | {batch} | {verdict} | {diff:.3g} | {bound:.3g} |", flush=True)
    return failures


def time_models(names, keel, baseline, rounds, iterations):
    """Per round: one `keel bench` process (its median and minimum) and as many ONNX Runtime runs in
    this process, back to back. The host's speed moves between processes, so the ratio reported is
    the median of the per-round ratios of medians; the minima over all rounds are shown beside it."""
    import re
    import statistics
    import numpy as np
    import onnxruntime as ort
    def keel_times(binary, model, inputs):
        result = subprocess.run([binary, "bench", "-q", model, "--input", inputs, "--iterations", str(iterations),
                                 "--threads", "2"], capture_output=True, text=True)
        found = re.search(r"median ([0-9.]+) ms, min ([0-9.]+) ms", result.stdout + result.stderr)
        if result.returncode != 0 or not found:
            return float("nan"), float("nan")
        return float(found.group(1)), float(found.group(2))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = 2
    options.inter_op_num_threads = 1
    engines = ["keel"] + (["baseline"] if baseline else []) + ["ort"]
    labels = {"keel": "Keel", "baseline": "baseline", "ort": "ORT"}
    print("| model | batch | " + " | ".join(f"{labels[e]} median (min) ms" for e in engines)
          + " | ORT / Keel, median of rounds (of minima) |")
    print("|---|---:|" + "---:|" * len(engines) + "---:|")
    for name in names:
        model = os.path.join(OUT, name + ".onnx")
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        for batch in BATCHES:
            inputs = os.path.join(OUT, f"{name}_input_b{batch}.npy")
            feed = {session.get_inputs()[0].name: np.load(inputs)}
            medians = {engine: [] for engine in engines}
            minima = {engine: [] for engine in engines}
            for _ in range(rounds):
                for engine, binary in (("keel", keel), ("baseline", baseline)):
                    if engine in engines:
                        median, minimum = keel_times(binary, model, inputs)
                        medians[engine].append(median)
                        minima[engine].append(minimum)
                for _ in range(2):
                    session.run(None, feed)
                runs = []
                for _ in range(iterations):
                    start = time.perf_counter()
                    session.run(None, feed)
                    runs.append((time.perf_counter() - start) * 1000)
                medians["ort"].append(statistics.median(runs))
                minima["ort"].append(min(runs))
            ratio = statistics.median(o / k for o, k in zip(medians["ort"], medians["keel"]))
            cells = " | ".join(f"{statistics.median(medians[e]):.1f} ({min(minima[e]):.1f})" for e in engines)
            print(f"| {name} | {batch} | {cells} | {ratio:.2f}x ({min(minima['ort']) / min(minima['keel']):.2f}x) |",
                  flush=True)


def main():
    if len(sys.argv) == 3 and sys.argv[1] in ("export-keras", "export-torch"):
        (export_keras if sys.argv[1] == "export-keras" else export_torch)(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build", "check", "time"])
    parser.add_argument("--only", help="comma-separated model names")
    parser.add_argument("--keel", default=os.path.join(ROOT, ".build", "release", "keel"))
    parser.add_argument("--baseline", help="time: another keel binary, timed in the same rounds")
    parser.add_argument("--rounds", type=int, default=3, help="time: interleaved rounds")
    parser.add_argument("--iterations", type=int, default=5, help="time: timed runs per round and engine")
    args = parser.parse_args()
    names = KERAS_MODELS + TORCH_MODELS
    if args.only:
        names = [n for n in args.only.split(",") if n]
        unknown = [n for n in names if n not in KERAS_MODELS + TORCH_MODELS]
        if unknown:
            raise SystemExit(f"unknown model(s) {unknown}; known: {KERAS_MODELS + TORCH_MODELS}")
    if args.command == "build":
        build(names)
    elif args.command == "time":
        time_models(names, args.keel, args.baseline, args.rounds, args.iterations)
    else:
        sys.exit(1 if check(names, args.keel) else 0)


if __name__ == "__main__":
    main()
