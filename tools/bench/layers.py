#!/usr/bin/env python3
"""Where Keel and OpenVINO spend one model's time, layer by layer.

Runs `keel bench --profile --json` and OpenVINO with its per-layer counters (PERF_COUNT) on the same
input, one after the other for --rounds rounds, each in a fresh process, and keeps every layer's
minimum over the rounds: the host's slow spells, which last longer than a round, then cannot decide
a layer. Layers are matched by ONNX node name (OpenVINO's "/WithoutBiases" suffix dropped); OpenVINO
names some fused layers after another node (Keras pointwise convolutions become "Multiply_N") and adds
reorders, so those show up as OpenVINO-only time, by kind.

Usage: $PYTHON tools/bench/layers.py MODEL.onnx --input X.npy [--precision fp32|bf16] [--rounds 3]
           [--threads 2] [--iterations 30] [--top 15] [--keel PATH]
$PYTHON needs numpy and openvino; the release keel must be built. Like tools/bench/run.sh it unsets
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for both engines.
"""
import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def openvino_worker(model, input_path, threads, iterations, precision):
    """Prints {layer: median ms} (summed over OpenVINO nodes of one name) and each layer's exec type."""
    import numpy as np
    import openvino as ov

    values = np.load(input_path)
    core = ov.Core()
    network = core.read_model(model)
    network.reshape({network.inputs[0].get_any_name(): list(values.shape)})
    compiled = core.compile_model(network, "CPU", {
        "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32", "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": str(threads), "PERF_COUNT": True})
    request = compiled.create_infer_request()
    for _ in range(3):
        request.infer({0: values})
    samples, kinds = collections.defaultdict(list), {}
    for _ in range(iterations):
        request.infer({0: values})
        per_run = collections.defaultdict(float)
        for info in request.profiling_info:
            name = info.node_name.split("/WithoutBiases")[0]
            per_run[name] += info.real_time.total_seconds() * 1000
            kinds.setdefault(name, info.exec_type)
        for name, ms in per_run.items():
            samples[name].append(ms)
    print(json.dumps({"layers": {name: statistics.median(ms) for name, ms in samples.items()}, "kinds": kinds}))


def run_json(command):
    environment = {key: value for key, value in os.environ.items() if key not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        sys.exit(f"{Path(command[0]).name} failed: {lines[-1] if lines else f'exit status {result.returncode}'}")
    return json.loads(result.stdout)


def keel_layers(arguments):
    data = run_json([arguments.keel, "bench", str(arguments.model), "--input", str(arguments.input), "--profile", "--json",
                     "--iterations", str(arguments.iterations), "--threads", str(arguments.threads),
                     "--precision", arguments.precision])
    return {layer["node"]: layer["ms"] for layer in data["layers"]}, {layer["node"]: layer["kernel"] for layer in data["layers"]}


def openvino_layers(arguments):
    data = run_json([sys.executable, __file__, "--openvino-worker", str(arguments.model), str(arguments.input),
                     str(arguments.threads), str(arguments.iterations), arguments.precision])
    return data["layers"], data["kinds"]


def minimum(rounds):
    """Per layer, its minimum over the rounds that have it."""
    best = {}
    for layers in rounds:
        for name, ms in layers.items():
            best[name] = min(best.get(name, ms), ms)
    return best


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--openvino-worker":
        model, input_path, threads, iterations, precision = sys.argv[2:7]
        openvino_worker(model, input_path, int(threads), int(iterations), precision)
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--top", type=int, default=15, help="how many layers of both to list, Keel's largest excess first")
    parser.add_argument("--keel", default=str(ROOT / ".build/release/keel"))
    arguments = parser.parse_args()

    keel_rounds, openvino_rounds = [], []
    kernels, kinds = {}, {}
    for _ in range(arguments.rounds):
        layers, kernels = keel_layers(arguments)
        keel_rounds.append(layers)
        layers, kinds = openvino_layers(arguments)
        openvino_rounds.append(layers)
    keel, openvino = minimum(keel_rounds), minimum(openvino_rounds)

    matched = [name for name in keel if name in openvino]
    print(f"{arguments.model.name}, batch from {arguments.input.name}, {arguments.precision}, {arguments.threads} threads: "
          f"each layer's minimum over {arguments.rounds} interleaved rounds of {arguments.iterations} runs' medians\n")
    print("| | Keel ms | OpenVINO ms |\n|---|---:|---:|")
    print(f"| all layers | {sum(keel.values()):.2f} | {sum(openvino.values()):.2f} |")
    print(f"| layers of both | {sum(keel[n] for n in matched):.2f} | {sum(openvino[n] for n in matched):.2f} |")
    keel_only = {name: ms for name, ms in keel.items() if name not in openvino}
    openvino_only = {name: ms for name, ms in openvino.items() if name not in keel}
    print(f"| only one engine's names | {sum(keel_only.values()):.2f} | {sum(openvino_only.values()):.2f} |\n")

    by_kernel = collections.defaultdict(float)
    for name, ms in keel.items():
        by_kernel[kernels.get(name, "?")] += ms
    by_kind = collections.defaultdict(float)
    for name, ms in openvino.items():
        by_kind[kinds.get(name, "?")] += ms
    print("| Keel kernel | ms | | OpenVINO exec type | ms |\n|---|---:|---|---|---:|")
    left, right = sorted(by_kernel.items(), key=lambda item: -item[1]), sorted(by_kind.items(), key=lambda item: -item[1])
    for index in range(max(len(left), len(right))):
        a = left[index] if index < len(left) else ("", None)
        b = right[index] if index < len(right) else ("", None)
        print(f"| {a[0]} | {'' if a[1] is None else f'{a[1]:.2f}'} | | {b[0]} | {'' if b[1] is None else f'{b[1]:.2f}'} |")

    print("\n| layer (Keel − OpenVINO, largest first) | Keel ms | OpenVINO ms | Keel kernel | OpenVINO exec type |")
    print("|---|---:|---:|---|---|")
    for name in sorted(matched, key=lambda n: openvino[n] - keel[n])[:arguments.top]:
        print(f"| {name} | {keel[name]:.3f} | {openvino[name]:.3f} | {kernels.get(name, '')} | {kinds.get(name, '')} |")


if __name__ == "__main__":
    main()
