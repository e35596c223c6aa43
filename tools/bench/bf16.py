#!/usr/bin/env python3
"""Keel bf16 against OpenVINO bf16 and Keel fp32, and the accuracy bf16 costs; writes its own
section of BENCHMARKS.md (between the bf16 markers).

Every engine runs the same ONNX file (bench.py's seeded VGG16 models on a random NHWC batch, and
the backbones in ZOO from models/zoo when it holds them, on the zoo's own input files) on the same
input, each timing in its own process, interleaved round by round with the starting engine
rotated, since the machine may be shared; the table gives medians over rounds and their ratios.
OpenVINO runs with INFERENCE_PRECISION_HINT=bf16, PERFORMANCE_HINT=LATENCY and the same thread
count. Accuracy is Keel bf16 against Keel fp32 on the same inputs (`keel bench --compare fp32`):
per output max abs / max rel difference (relative to the output's range), the lowest cosine
similarity over images, and top-1 agreement; for VGG16 with Keras's top (seeded weights) over
the photos in samples/ too.

Run it through tools/bench/bf16.sh, which builds keel and clears the OpenBLAS overrides.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ROOT, machine, replace_machine_table, vgg16_onnx  # noqa: E402  (bench.py makes the models)

BEGIN, END = "<!-- bf16: begin -->", "<!-- bf16: end -->"
MODELS = [("VGG16 without top", "none"), ("VGG16 + ResNet-style head", "resnet"), ("VGG16 + ViT-style head", "vit")]
# Backbones of the model zoo (tools/zoo builds models/zoo), measured when present, each on the zoo's
# input for the batch (models/zoo/NAME.input_bB.npy: its layout and size).
ZOO = [("ResNet50 (Keras, zoo)", "keras_resnet50"), ("Xception (Keras, zoo)", "keras_xception"),
       ("MobileNetV2 (torchvision, zoo)", "torch_mobilenet_v2"),
       ("EfficientNet-B0 (torchvision, zoo)", "torch_efficientnet_b0"),
       ("DenseNet121 (torchvision, zoo)", "torch_densenet121"), ("ConvNeXt-T (torchvision, zoo)", "torch_convnext_tiny")]


def openvino_worker(model, input_path, threads, iterations, warmup, output_path):
    """Runs in its own process: OpenVINO's CPU plugin, bf16 inference precision, latency mode."""
    import openvino as ov

    core = ov.Core()
    data = np.load(input_path)
    network = core.read_model(model)
    network.reshape({network.inputs[0].get_any_name(): list(data.shape)})
    compiled = core.compile_model(network, "CPU", {"INFERENCE_PRECISION_HINT": "bf16", "PERFORMANCE_HINT": "LATENCY",
                                                   "INFERENCE_NUM_THREADS": str(threads)})
    request = compiled.create_infer_request()
    for _ in range(warmup):
        request.infer({0: data})
    times = []
    for _ in range(iterations):
        begin = time.perf_counter()
        request.infer({0: data})
        times.append((time.perf_counter() - begin) * 1000)
    if output_path:
        np.save(output_path, request.get_output_tensor(0).data)
    print(json.dumps({"median_ms": statistics.median(times)}))


def run_json(command):
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def keel_bench(keel, model, input_path, threads, iterations, warmup, precision, extra=()):
    return run_json([keel, "bench", str(model), "--input", str(input_path), "--threads", str(threads),
                     "--iterations", str(iterations), "--warmup", str(warmup), "--json", "--precision", precision,
                     *extra])


def openvino_bench(model, input_path, threads, iterations, warmup, output_path=""):
    return run_json([sys.executable, __file__, "--openvino-worker", str(model), str(input_path), str(threads),
                     str(iterations), str(warmup), output_path])


def measure(arguments, label, model, input_path, batch):
    engines = {
        "keel_bf16": lambda: keel_bench(arguments.keel, model, input_path, arguments.threads, arguments.iterations,
                                        arguments.warmup, "bf16")["median_ms"],
        "keel_fp32": lambda: keel_bench(arguments.keel, model, input_path, arguments.threads, arguments.iterations,
                                        arguments.warmup, "fp32")["median_ms"],
        "openvino_bf16": lambda: openvino_bench(model, input_path, arguments.threads, arguments.iterations,
                                                arguments.warmup)["median_ms"],
    }
    names = list(engines)
    times = {name: [] for name in names}
    for round_ in range(arguments.rounds):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in order:
            times[name].append(engines[name]())
    row = {"model": label, "batch": batch, **{name: statistics.median(values) for name, values in times.items()}}
    # Ratios per round (the engines of one round ran under the same load), then their median.
    row["openvino_over_bf16"] = statistics.median(o / b for o, b in zip(times["openvino_bf16"], times["keel_bf16"]))
    row["fp32_over_bf16"] = statistics.median(f / b for f, b in zip(times["keel_fp32"], times["keel_bf16"]))
    print(f"{label}, batch {batch}: keel bf16 {row['keel_bf16']:.1f} ms, keel fp32 {row['keel_fp32']:.1f} ms, "
          f"openvino bf16 {row['openvino_bf16']:.1f} ms; openvino/keel-bf16 {row['openvino_over_bf16']:.2f}, "
          f"keel fp32/bf16 {row['fp32_over_bf16']:.2f}", flush=True)
    return row


def accuracy(keel, model, input_path, threads):
    data = keel_bench(keel, model, input_path, threads, 1, 0, "bf16", ["--compare", "fp32"])
    return data["compared"]


def sample_images(size=224):
    """The RGB photos of samples/, resized to 224x224 and preprocessed as Keras's VGG16 expects
    (BGR, ImageNet channel means subtracted), NHWC."""
    from PIL import Image

    mean = np.array([103.939, 116.779, 123.68], dtype=np.float32)
    images, names = [], []
    for path in sorted((ROOT / "samples").iterdir()):
        if path.suffix.lower() not in (".jpg", ".png"):
            continue
        pixels = np.asarray(Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.float32)
        images.append(pixels[..., ::-1] - mean)
        names.append(path.name)
    return np.stack(images), names


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keel", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    arguments = parser.parse_args()

    rows, accuracies = [], []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        rng = np.random.default_rng(arguments.seed)
        inputs = {}
        for batch in arguments.batches:
            inputs[batch] = work / f"input_b{batch}.npy"
            np.save(inputs[batch], rng.uniform(-120, 130, (batch, 224, 224, 3)).astype(np.float32))
        models = []  # (label, model, {batch: input})
        for label, head in MODELS:
            models.append((label, work / f"vgg16_{head}.onnx", inputs))
            vgg16_onnx(models[-1][1], arguments.seed, head=head)
        for label, name in ZOO:
            zoo = ROOT / "models" / "zoo"
            own = {batch: zoo / f"{name}.input_b{batch}.npy" for batch in arguments.batches}
            missing = [str(path) for path in [zoo / f"{name}.onnx", *own.values()] if not path.exists()]
            if missing:
                print(f"{label}: {', '.join(missing)} missing (build the zoo first); skipped", flush=True)
            else:
                models.append((label, zoo / f"{name}.onnx", own))
        for label, model, model_inputs in models:
            for batch in arguments.batches:
                rows.append(measure(arguments, label, model, model_inputs[batch], batch))
            largest = max(arguments.batches)
            for entry in accuracy(arguments.keel, model, model_inputs[largest], arguments.threads):
                accuracies.append({"model": label, "input": f"{largest} random images", **entry})
        top = work / "vgg16_top.onnx"
        vgg16_onnx(top, arguments.seed, head="top")
        images, names = sample_images()
        samples = work / "samples.npy"
        np.save(samples, images)
        for entry in accuracy(arguments.keel, top, samples, arguments.threads):
            accuracies.append({"model": "VGG16 with top (seeded weights)", "input": f"samples/ ({len(names)} photos)",
                               **entry})
    for entry in accuracies:
        print(f"{entry['model']} ({entry['input']}): {entry['output']}: max abs {entry['max_abs']:.4g}, "
              f"max rel {entry['max_rel']:.4g}, min cosine {entry['min_cosine']:.6f}, "
              f"top-1 {entry['top1_agree']}/{entry['samples']}")
    if not arguments.no_write:
        write_section(arguments, rows, accuracies)


def write_section(arguments, rows, accuracies):
    cpu = machine()
    if "AMX" in cpu:
        kernels = ("Keel bf16 runs conv2d and dense on AMX tiles (bf16 products, fp32 accumulation; bias, residual, "
                   "ReLU and a following 2×2 max pool in the fp32 epilogue; bf16 between bf16 layers, fp32 elsewhere), "
                   "dense layers of at most 4 rows on AVX512_BF16; the RGB first layer's input split in two bf16 terms "
                   "(about 16 bits of each pixel value).")
    else:
        kernels = ("No AMX here: Keel bf16 runs conv2d and dense with AVX512_BF16 (vdpbf16ps products, fp32 "
                   "accumulation; bias, residual and ReLU in fp32; bf16 between bf16 layers, fp32 elsewhere); layers "
                   "that fp32 runs with Winograd F(4×4), or whose input bf16 would split (the RGB first layer), keep "
                   "fp32, the faster there.")
    start, stop = f"<!-- machine: {cpu} -->", f"<!-- machine end: {cpu} -->"
    lines = [start, "", f"## bf16: Keel against OpenVINO bf16 and Keel fp32 ({cpu})", "",
             f"`tools/bench/bf16.sh` on {cpu}, {arguments.threads} threads, {arguments.rounds} interleaved rounds of "
             f"{arguments.iterations} timed runs (medians); ratios are medians of per-round ratios. OpenVINO: "
             "`INFERENCE_PRECISION_HINT=bf16`, `PERFORMANCE_HINT=LATENCY`. " + kernels, "",
             "| model | batch | Keel bf16 ms | OpenVINO bf16 ms | Keel fp32 ms | OpenVINO / Keel bf16 | Keel fp32 / bf16 |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['model']} | {row['batch']} | {row['keel_bf16']:.1f} | {row['openvino_bf16']:.1f} | "
                     f"{row['keel_fp32']:.1f} | {row['openvino_over_bf16']:.2f} | {row['fp32_over_bf16']:.2f} |")
    lines += ["", "Accuracy of Keel bf16 against Keel fp32 on the same inputs (max rel is max abs over the output's "
              "largest magnitude; cosine per image, the lowest shown):", "",
              "| model | input | output | max abs | max rel | min cosine | top-1 agreement |", "|---|---|---|---|---|---|---|"]
    for entry in accuracies:
        lines.append(f"| {entry['model']} | {entry['input']} | {entry['output']} | {entry['max_abs']:.4g} | "
                     f"{entry['max_rel']:.4g} | {entry['min_cosine']:.6f} | {entry['top1_agree']}/{entry['samples']} |")
    lines += ["", stop]
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    text = replace_machine_table(text, BEGIN, END, cpu, "\n".join(lines))
    path.write_text(text)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--openvino-worker":
        model, input_path, threads, iterations, warmup = sys.argv[2:7]
        openvino_worker(model, input_path, int(threads), int(iterations), int(warmup),
                        sys.argv[7] if len(sys.argv) > 7 else "")
    else:
        main()
