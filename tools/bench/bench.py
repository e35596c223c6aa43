#!/usr/bin/env python3
"""Times Keel against ONNX Runtime on VGG16 without top (224x224, fp32) and writes BENCHMARKS.md.

Both systems run the very same ONNX file (seeded numpy weights, NHWC input like Keras) on the same
input tensors. Keel and ORT runs are interleaved round by round in separate processes, since the
machine may be shared; the table reports medians over rounds. Outputs are compared first:
max|keel - ort| / max|ort| must stay below 1e-4.

Run it through `tools/bench/run.sh vgg16`, which builds keel and clears the OpenBLAS overrides.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
VGG16_BLOCKS = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
TOLERANCE = 1e-4
NOTES_MARKER = "<!-- notes: kept across runs -->"
ZOO_BEGIN, ZOO_END = "<!-- zoo table: begin (written by tools/bench/run.sh) -->", "<!-- zoo table: end -->"


def machine():
    """The CPU a table was measured on: its name, family and model, and the widest SIMD Keel uses there."""
    fields = {}
    for line in open("/proc/cpuinfo"):
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
        if not line.strip():
            break
    flags = set(fields.get("flags", "").split())
    simd = ("AVX-512 + AMX" if "amx_bf16" in flags else "AVX-512" if "avx512f" in flags
            else "AVX2" if "avx2" in flags else "no AVX2")
    name = fields.get("model name", platform.processor())
    return f"{name}, family {fields.get('cpu family', '?')} model {fields.get('model', '?')}, {simd}"


def replace_machine_table(text, begin, end, cpu, block):
    """`text` with `block` (which starts and ends with the machine markers of `cpu`) put between
    the `begin` and `end` markers: one table per machine, so a run replaces its own machine's
    table and keeps the others' (the CPU differs between sessions, and so do the ratios)."""
    start, stop = f"<!-- machine: {cpu} -->", f"<!-- machine end: {cpu} -->"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        inner, tail = rest.split(end, 1)
        if start in inner and stop in inner:
            inner = inner.split(start, 1)[0] + block + inner.split(stop, 1)[1]
        else:
            inner = inner.rstrip("\n") + "\n\n" + block + "\n\n"
        return head + begin + inner + end + tail
    head, _, rest = text.partition("\n")
    return head + "\n\n" + begin + "\n\n" + block + "\n\n" + end + "\n" + rest


def vgg16_onnx(path, seed, head="none"):
    """VGG16 convolutional base as ONNX: NHWC input -> NCHW convs -> NHWC output, Keras layer names.
    `head` adds the transfer-learning heads: "resnet" (Flatten, Dense 256, BatchNorm, ReLU, Dense 10)
    or "vit" (1x1 Conv 768, Reshape to [N, 49, 768], LayerNormalization), or Keras's own top
    "top" (Flatten, fc1 4096, fc2 4096, predictions 1000 with softmax: 138,357,544 parameters)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("Transpose", ["input_1"], ["nchw"], perm=[0, 3, 1, 2], name="to_nchw")]
    initializers = []

    def constant(name, values):
        initializers.append(numpy_helper.from_array(np.asarray(values, dtype=np.float32), name))
        return name

    current, channels = "nchw", 3
    for block, (filters, convs) in enumerate(VGG16_BLOCKS, start=1):
        for index in range(1, convs + 1):
            name = f"block{block}_conv{index}"
            # He-normal weights keep activations O(1) through all 13 layers, as trained VGG16's do.
            weights = constant(f"{name}/kernel",
                               rng.standard_normal((filters, channels, 3, 3)) * np.sqrt(2.0 / (9 * channels)))
            bias = constant(f"{name}/bias", rng.uniform(-0.05, 0.05, filters))
            nodes.append(helper.make_node("Conv", [current, weights, bias], [f"{name}/conv"],
                                          kernel_shape=[3, 3], pads=[1, 1, 1, 1], name=name))
            nodes.append(helper.make_node("Relu", [f"{name}/conv"], [name], name=f"{name}/relu"))
            current, channels = name, filters
        pool = f"block{block}_pool"
        nodes.append(helper.make_node("MaxPool", [current], [pool], kernel_shape=[2, 2], strides=[2, 2], name=pool))
        current = pool
    output_shape = ["N", 7, 7, 512]
    if head == "vit":
        kernel = constant("vit_conv/kernel", rng.standard_normal((768, 512, 1, 1)) * np.sqrt(1.0 / 512))
        bias = constant("vit_conv/bias", rng.uniform(-0.05, 0.05, 768))
        nodes.append(helper.make_node("Conv", [current, kernel, bias], ["vit_conv"], kernel_shape=[1, 1], name="vit_conv"))
        current = "vit_conv"
    nodes.append(helper.make_node("Transpose", [current], ["features"], perm=[0, 2, 3, 1], name="to_nhwc"))
    if head == "none":
        nodes[-1].output[0] = "output"
    elif head == "resnet":
        nodes.append(helper.make_node("Flatten", ["features"], ["flatten"], axis=1, name="flatten"))
        nodes.append(helper.make_node("Gemm", ["flatten", constant("dense/kernel", rng.standard_normal((25088, 256))
                                                                     * np.sqrt(1.0 / 25088)),
                                               constant("dense/bias", rng.uniform(-0.05, 0.05, 256))],
                                      ["dense"], name="dense"))
        nodes.append(helper.make_node("BatchNormalization", ["dense", constant("bn/gamma", rng.uniform(0.5, 1.5, 256)),
                                                             constant("bn/beta", rng.uniform(-0.1, 0.1, 256)),
                                                             constant("bn/mean", rng.uniform(-0.1, 0.1, 256)),
                                                             constant("bn/variance", rng.uniform(0.5, 1.5, 256))],
                                      ["bn"], epsilon=1e-3, name="bn"))
        nodes.append(helper.make_node("Relu", ["bn"], ["relu"], name="relu"))
        nodes.append(helper.make_node("Gemm", ["relu", constant("dense_1/kernel", rng.standard_normal((256, 10)) / 16),
                                               constant("dense_1/bias", rng.uniform(-0.05, 0.05, 10))],
                                      ["output"], name="dense_1"))
        output_shape = ["N", 10]
    elif head == "top":
        nodes.append(helper.make_node("Flatten", ["features"], ["flatten"], axis=1, name="flatten"))
        current, width = "flatten", 25088
        for name, units in [("fc1", 4096), ("fc2", 4096), ("predictions", 1000)]:
            kernel = constant(f"{name}/kernel", (rng.standard_normal((width, units), dtype=np.float32)
                                                 * np.float32(np.sqrt(2.0 / width))))
            bias = constant(f"{name}/bias", rng.uniform(-0.05, 0.05, units))
            nodes.append(helper.make_node("Gemm", [current, kernel, bias], [f"{name}/dense"], name=name))
            activation = "Softmax" if name == "predictions" else "Relu"
            out = "output" if name == "predictions" else name
            nodes.append(helper.make_node(activation, [f"{name}/dense"], [out], name=f"{name}/{activation.lower()}"))
            current, width = out, units
        output_shape = ["N", 1000]
    elif head == "vit":
        shape = numpy_helper.from_array(np.array([-1, 49, 768], dtype=np.int64), "reshape/shape")
        initializers.append(shape)
        nodes.append(helper.make_node("Reshape", ["features", "reshape/shape"], ["tokens"], name="reshape"))
        nodes.append(helper.make_node("LayerNormalization", ["tokens", constant("ln/gamma", rng.uniform(0.5, 1.5, 768)),
                                                             constant("ln/beta", rng.uniform(-0.1, 0.1, 768))],
                                      ["output"], axis=-1, epsilon=1e-3, name="layer_normalization"))
        output_shape = ["N", 49, 768]
    graph = helper.make_graph(
        nodes, f"vgg16_{head}",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["N", 224, 224, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, output_shape)], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="keel-bench")
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def ort_worker(model, input_path, threads, iterations, warmup, output_path):
    """Runs in its own process so its peak RSS is ORT's alone (plus the Python interpreter)."""
    import resource

    import onnxruntime as ort

    start = time.perf_counter()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - start) * 1000
    feed = {session.get_inputs()[0].name: np.load(input_path)}
    for _ in range(warmup):
        session.run(None, feed)
    times = []
    for _ in range(iterations):
        begin = time.perf_counter()
        outputs = session.run(None, feed)
        times.append((time.perf_counter() - begin) * 1000)
    if output_path:
        np.save(output_path, outputs[0])
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"median_ms": statistics.median(times), "load_ms": load_ms, "peak_rss_mb": peak_rss_mb}))


def run_json(command):
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def keel_bench(keel, model, input_path, threads, iterations, warmup, extra=()):
    data = run_json([keel, "bench", str(model), "--input", str(input_path), "--threads", str(threads),
                     "--iterations", str(iterations), "--warmup", str(warmup), "--json", *extra])
    return {"median_ms": data["median_ms"], "load_ms": data["load_ms"] + data["compile_ms"],
            "peak_rss_mb": data["peak_rss_mb"]}


def ort_bench(model, input_path, threads, iterations, warmup, output_path=None):
    return run_json([sys.executable, __file__, "--ort-worker", str(model), str(input_path), str(threads),
                     str(iterations), str(warmup), output_path or ""])


def check_outputs(keel, model, input_path, work):
    keel_output, ort_output = work / "keel_out.npy", work / "ort_out.npy"
    subprocess.run([keel, "run", str(model), "--input", str(input_path), "--output", str(keel_output)],
                   check=True, capture_output=True)
    ort_bench(model, input_path, 2, 1, 0, str(ort_output))
    a, b = np.load(keel_output), np.load(ort_output)
    if a.shape != b.shape:
        sys.exit(f"output shapes differ: keel {a.shape}, ort {b.shape}")
    error = float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))
    if not error < TOLERANCE:
        sys.exit(f"outputs differ: max|keel - ort| / max|ort| = {error:.2e} >= {TOLERANCE}")
    return error


def median_of(rounds, key):
    return statistics.median(round_[key] for round_ in rounds)


def measure(arguments, label, model, input_path, batch, threads, iterations):
    keel_rounds, ort_rounds = [], []
    for round_ in range(arguments.rounds):
        # Alternate who goes first so drifting load does not favour one side.
        order = [("keel", keel_rounds), ("ort", ort_rounds)]
        for system, results in order if round_ % 2 == 0 else reversed(order):
            if system == "keel":
                results.append(keel_bench(arguments.keel, model, input_path, threads, iterations, arguments.warmup))
            else:
                results.append(ort_bench(model, input_path, threads, iterations, arguments.warmup))
    row = {"model": label, "batch": batch, "threads": threads,
           "keel_ms": median_of(keel_rounds, "median_ms"), "ort_ms": median_of(ort_rounds, "median_ms"),
           "keel_rss": max(r["peak_rss_mb"] for r in keel_rounds),
           "ort_rss": max(r["peak_rss_mb"] for r in ort_rounds),
           "keel_load": median_of(keel_rounds, "load_ms"), "ort_load": median_of(ort_rounds, "load_ms")}
    print(f"{label}, batch {batch}, {threads} threads: keel {row['keel_ms']:.1f} ms, ort {row['ort_ms']:.1f} ms, "
          f"ort/keel {row['ort_ms'] / row['keel_ms']:.2f}", flush=True)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keel", required=True, help="the keel executable (release build)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved Keel/ORT rounds per configuration")
    parser.add_argument("--iterations", type=int, default=5, help="timed runs per process (batch 1; fewer for larger)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--heads", nargs="*", default=[], choices=["resnet", "vit", "top"],
                        help="also time VGG16 with these transfer-learning heads")
    parser.add_argument("--head-threads", type=int, nargs="+", default=[2], help="thread counts for head rows")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    arguments = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="keel-bench-"))
    rows, errors = [], {}
    inputs = {}
    for batch in arguments.batches:
        inputs[batch] = work / f"input_{batch}.npy"
        np.save(inputs[batch], np.random.default_rng(arguments.seed + 1).uniform(0, 255, (batch, 224, 224, 3))
                .astype(np.float32) - np.float32(120))
    models = [("none", "VGG16 no top", arguments.threads)]
    models += [(head, "VGG16 with top" if head == "top" else f"VGG16 + {head} head", arguments.head_threads)
               for head in arguments.heads]
    for head, label, thread_counts in models:
        model = work / f"vgg16_{head}.onnx"
        # Built in a child: Linux carries a process's peak RSS across fork and exec, so the benchmark
        # processes started from here would otherwise report this process's peak as their own.
        subprocess.run([sys.executable, __file__, "--make-model", str(model), str(arguments.seed), head], check=True)
        for batch in arguments.batches:
            input_path = inputs[batch]
            errors[(label, batch)] = check_outputs(arguments.keel, model, input_path, work)
            iterations = max(2, arguments.iterations // batch) if batch > 1 else arguments.iterations
            for threads in thread_counts:
                rows.append(measure(arguments, label, model, input_path, batch, threads, iterations))
    write_report(arguments, rows, errors)


def write_report(arguments, rows, errors):
    ort_version = subprocess.run([sys.executable, "-c", "import onnxruntime; print(onnxruntime.__version__)"],
                                 check=True, capture_output=True, text=True).stdout.strip()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    lines = [
        "# Benchmarks",
        "",
        "VGG16 without top (13 3×3 convolutions + 5 max pools, 224×224×3 NHWC input, fp32), the same ONNX",
        f"file with seeded He-normal weights for both systems. Written by `tools/bench/run.sh vgg16` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"- Machine: {cpu}, {os.cpu_count()} cores; onnxruntime {ort_version} "
        "(CPU provider, ORT_ENABLE_ALL, sequential, `intra_op_num_threads` = threads).",
        "- OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for both systems.",
        f"- {arguments.rounds} rounds per row, Keel and ORT interleaved in separate processes; each round "
        "times the median of several runs after warm-up; the table shows the median over rounds.",
        "- Peak RSS is each process's `ru_maxrss` (ORT's includes the Python interpreter and numpy).",
        "- Load is Keel's parse + compile + weight preparation and ORT's session creation.",
        "- Outputs agree: max|keel − ort| / max|ort| = "
        + ", ".join(f"{error:.1e} ({label}, batch {batch})" for (label, batch), error in errors.items()) + ".",
        "",
        "| model | batch | threads | Keel ms | ORT ms | ORT/Keel | Keel RSS MB | ORT RSS MB | Keel load ms | ORT load ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(f"| {row['model']} | {row['batch']} | {row['threads']} | {row['keel_ms']:.1f} | {row['ort_ms']:.1f} "
                     f"| {row['ort_ms'] / row['keel_ms']:.2f}× | {row['keel_rss']:.0f} | {row['ort_rss']:.0f} "
                     f"| {row['keel_load']:.0f} | {row['ort_load']:.0f} |")
    lines.append("")
    # Hand-written notes after the marker and the zoo table (tools/bench/zoo.py) survive a rerun.
    output = Path(arguments.output)
    previous = output.read_text() if output.exists() else ""
    if ZOO_BEGIN in previous and ZOO_END in previous:
        zoo = ZOO_BEGIN + previous.split(ZOO_BEGIN, 1)[1].split(ZOO_END, 1)[0] + ZOO_END
        lines[1:1] = ["", zoo]
    if NOTES_MARKER in previous:
        lines.append(NOTES_MARKER + previous.split(NOTES_MARKER, 1)[1].rstrip("\n"))
        lines.append("")
    output.write_text("\n".join(lines))
    print(f"wrote {arguments.output}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--make-model":
        vgg16_onnx(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif len(sys.argv) > 1 and sys.argv[1] == "--ort-worker":
        model, input_path, threads, iterations, warmup, output_path = sys.argv[2:8]
        ort_worker(model, input_path, int(threads), int(iterations), int(warmup), output_path or None)
    else:
        main()
