#!/usr/bin/env python3
"""Times Keel, ONNX Runtime and OpenVINO on every model of the benchmark zoo (tools/zoo/build.py) and
writes the table into BENCHMARKS.md between the zoo markers.

For each model and batch: Keel's output is checked against ONNX Runtime's reference (recorded when
the zoo was built) within 1e-5 + 1e-3·max|ORT|, then the three engines are timed in separate
processes, interleaved round by round (the order rotates), with the same thread count. Each round
goes over the whole set, so a configuration's rounds lie minutes apart. A model Keel cannot import or
run, or whose numbers differ, gets a line saying why instead of a time.

OpenVINO runs on the CPU plugin with INFERENCE_PRECISION_HINT f32, PERFORMANCE_HINT LATENCY and
INFERENCE_NUM_THREADS = threads, its model reshaped to the batch (Keel also plans per batch); ONNX
Runtime as in bench.py (ORT_ENABLE_ALL, sequential, intra_op_num_threads = threads).

Run it through tools/bench/run.sh, which builds keel and clears the OpenBLAS overrides.
"""
import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import (ROOT, ZOO_BEGIN as BEGIN, ZOO_END as END, keel_bench, machine, ort_bench,  # noqa: E402
                   replace_machine_table, run_json)

# Each set's table (see tools/zoo/build.py): its title, the commands that build and time it, its
# folder under models/ and its markers in BENCHMARKS.md. The held-out set has models the benchmark
# set does not; the free set, exports that leave the image's height and width symbolic.
SETS = {
    "benchmark": ("Every backbone", "tools/bench/run.sh", "`tools/zoo/build.sh`", "zoo", (BEGIN, END)),
    "wider": ("Held-out backbones", "tools/bench/run.sh --set wider", "`tools/zoo/build.sh --set wider`", "wider",
              ("<!-- wider table: begin -->", "<!-- wider table: end -->")),
    "free": ("Exports with a free image size", "tools/bench/run.sh --set free", "`tools/zoo/build.sh --set free`", "free",
             ("<!-- free table: begin -->", "<!-- free table: end -->")),
}

ENGINES = ("keel", "ort", "openvino")


def tolerance_error(actual, reference):
    """max|a − r| / (1e-5 + 1e-3·max|r|): at most 1 passes."""
    return float(np.abs(actual - reference).max() / (1e-5 + 1e-3 * np.abs(reference).max()))


def openvino_worker(model, input_path, threads, iterations, warmup, output_path):
    import openvino as ov

    start = time.perf_counter()
    core = ov.Core()
    network = core.read_model(model)
    values = np.load(input_path)
    network.reshape({network.inputs[0].get_any_name(): list(values.shape)})
    compiled = core.compile_model(network, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
                                                   "INFERENCE_NUM_THREADS": str(threads)})
    request = compiled.create_infer_request()
    load_ms = (time.perf_counter() - start) * 1000
    for _ in range(warmup):
        request.infer({0: values})
    times = []
    for _ in range(iterations):
        begin = time.perf_counter()
        request.infer({0: values})
        times.append((time.perf_counter() - begin) * 1000)
    if output_path:
        np.save(output_path, request.get_output_tensor(0).data)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"median_ms": statistics.median(times), "load_ms": load_ms, "peak_rss_mb": peak_rss_mb}))


def openvino_bench(model, input_path, threads, iterations, warmup, output_path=None):
    return run_json([sys.executable, __file__, "--openvino-worker", str(model), str(input_path), str(threads),
                     str(iterations), str(warmup), output_path or ""])


def keel_check(keel, model, input_path, reference, work):
    """(error ratio, None) or (None, why Keel failed)."""
    output = work / "keel_out.npy"
    result = subprocess.run([keel, "run", str(model), "--input", str(input_path), "--output", str(output)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        return None, (lines[-1] if lines else f"exit status {result.returncode}").replace(f"{model.parent}/", "")[:300]
    actual = np.load(output)
    if actual.shape != reference.shape:
        return None, f"output shape {actual.shape}, ORT {reference.shape}"
    error = tolerance_error(actual, reference)
    if not error <= 1:
        return error, f"outputs differ: max|keel − ort| = {error:.2f} × (1e-5 + 1e-3·max|ort|)"
    return error, None


def runs_for(arguments, model, input_path, engines, cap=1000):
    """Timed runs that last about --min-seconds, from a short probe of the first engine."""
    if arguments.min_seconds <= 0 or not engines:
        return 0
    probe = {"keel": lambda: keel_bench(arguments.keel, model, input_path, arguments.threads, 3, 1),
             "ort": lambda: ort_bench(model, input_path, arguments.threads, 3, 1),
             "openvino": lambda: openvino_bench(model, input_path, arguments.threads, 3, 1)}[engines[0]]()
    return min(cap, math.ceil(arguments.min_seconds * 1000 / max(probe["median_ms"], 1e-3)))


def measure_round(arguments, engines, model, input_path, iterations, round_):
    """One round of one configuration: each engine in its own process, the order rotated by round."""
    order = engines[round_ % len(engines):] + engines[:round_ % len(engines)]
    results = {}
    for engine in order:
        if engine == "keel":
            results[engine] = keel_bench(arguments.keel, model, input_path, arguments.threads, iterations,
                                         arguments.warmup)
        elif engine == "ort":
            results[engine] = ort_bench(model, input_path, arguments.threads, iterations, arguments.warmup)
        else:
            results[engine] = openvino_bench(model, input_path, arguments.threads, iterations, arguments.warmup)
    return results


def summarize(rounds):
    """Medians over rounds per engine, and each peer's median over rounds of peer ms / Keel ms."""
    timing = {engine: {"ms": statistics.median(r["median_ms"] for r in results),
                       "best_ms": min(r["median_ms"] for r in results),
                       "rss": max(r["peak_rss_mb"] for r in results),
                       "load": statistics.median(r["load_ms"] for r in results)}
              for engine, results in rounds.items()}
    # Peer ms / Keel ms within each round, where the engines ran seconds apart: the host's slow
    # phases then move both sides of a ratio together.
    if "keel" in rounds:
        for peer in rounds:
            if peer != "keel":
                timing[peer]["round_ratio"] = statistics.median(
                    p["median_ms"] / k["median_ms"] for p, k in zip(rounds[peer], rounds["keel"]))
    return timing


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keel", required=True, help="the keel executable (release build)")
    parser.add_argument("--set", choices=tuple(SETS), default="benchmark",
                        help="the benchmark set, the held-out set (tools/zoo/build.sh --set wider) or the exports "
                             "with a free image size (--set free); each table has its own place in BENCHMARKS.md")
    parser.add_argument("--zoo", help="where tools/zoo/build.sh wrote the models (default: models/zoo, or "
                                      "models/<set> for another set)")
    parser.add_argument("--models", nargs="*", help="only these zoo names")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=10, help="timed runs per process at batch 1 (fewer above)")
    parser.add_argument("--min-seconds", type=float, default=1.0,
                        help="at least this long of timed runs per process: a small model's ten runs took 40 ms, "
                             "shorter than the host's slow spells, which then decided a whole round")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--json", help="also write the rows here")
    arguments = parser.parse_args()
    zoo = Path(arguments.zoo or ROOT / "models" / SETS[arguments.set][3])
    manifest_path = zoo / "manifest.json"
    if not manifest_path.exists():
        sys.exit(f"error: {manifest_path} not found; build the zoo first with tools/zoo/build.sh")
    manifest = json.loads(manifest_path.read_text())
    names = arguments.models or sorted(manifest, key=lambda n: (not n.startswith("keras"), n))
    work = Path(tempfile.mkdtemp(prefix="keel-zoo-"))
    rows, notes = [], []
    # Every configuration is checked and sized first; then the rounds run over the whole set in
    # turn, so one configuration's rounds lie minutes apart. The host's slow spells last seconds to
    # a minute: with a configuration's rounds back to back, one spell could cover all of them.
    configurations = []
    for name in names:
        entry = manifest.get(name)
        if entry is None:
            sys.exit(f"error: '{name}' is not in {manifest_path}")
        if "error" in entry:
            notes.append(f"{name}: not built: {entry['error']}")
            continue
        model = zoo / entry["file"]
        for batch in arguments.batches:
            input_path = zoo / f"{name}.input_b{batch}.npy"
            reference = np.load(zoo / f"{name}.ort_b{batch}.npy")
            error, failure = keel_check(arguments.keel, model, input_path, reference, work)
            engines = [e for e in arguments.engines if e != "keel" or failure is None]
            iterations = arguments.iterations if batch == 1 else max(2, arguments.iterations * 2 // batch)
            iterations = max(iterations, runs_for(arguments, model, input_path, engines))
            configurations.append({"model": name, "batch": batch, "error": error, "failure": failure,
                                   "engines": engines, "path": model, "input": input_path, "iterations": iterations,
                                   "rounds": {engine: [] for engine in engines}})
    for round_ in range(arguments.rounds):
        for configuration in configurations:
            results = measure_round(arguments, configuration["engines"], configuration["path"], configuration["input"],
                                    configuration["iterations"], round_)
            for engine, result in results.items():
                configuration["rounds"][engine].append(result)
        print(f"round {round_ + 1} of {arguments.rounds} done", flush=True)
    for configuration in configurations:
        timing = summarize(configuration["rounds"])
        rows.append({key: configuration[key] for key in ("model", "batch", "error", "failure")} | timing)
        summary = ", ".join(f"{e} {timing[e]['ms']:.1f} ms" for e in configuration["engines"])
        failure = configuration["failure"]
        print(f"{configuration['model']} batch {configuration['batch']}: {summary}"
              + (f"; keel: {failure}" if failure else ""), flush=True)
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(rows, indent=1))
    write_report(arguments, manifest, rows, notes)


def ratio(row, peer, key="ms"):
    """Peer / Keel: the median of the per-round ratios, or with key the ratio of that figure."""
    if "keel" not in row or peer not in row:
        return None
    if key == "ms" and "round_ratio" in row[peer]:
        return row[peer]["round_ratio"]
    return row[peer][key] / row["keel"][key]


def geometric_mean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def write_report(arguments, manifest, rows, notes):
    title, command, built, _, markers = SETS[arguments.set]
    versions = subprocess.run([sys.executable, "-c", "import onnxruntime, openvino; "
                               "print(onnxruntime.__version__, openvino.get_version().split('-')[0])"],
                              capture_output=True, text=True).stdout.split()
    cpu = machine()

    def cell(row, engine, key, digits=1):
        return f"{row[engine][key]:.{digits}f}" if engine in row else "—"

    def times(value):
        return f"{value:.2f}×" if value is not None else "—"

    start, stop = f"<!-- machine: {cpu} -->", f"<!-- machine end: {cpu} -->"
    lines = [start, "", f"## {title}: Keel, ONNX Runtime and OpenVINO ({arguments.threads} threads; {cpu})", "",
             f"Written by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
             f"{cpu}, {os.cpu_count()} cores; onnxruntime {versions[0] if versions else '?'}, "
             f"OpenVINO {versions[1] if len(versions) > 1 else '?'}. Models from {built} (random weights, "
             "BatchNorm statistics calibrated on a random batch). Median ms over "
             f"{arguments.rounds} interleaved rounds, each over the whole set in turn (each round a process's median of its timed runs, at least {arguments.iterations} of them and about {arguments.min_seconds:g} s in all); RSS is each process's peak (ORT's and OpenVINO's include "
             "Python); load is Keel's parse + compile + weight preparation, ORT's session creation, OpenVINO's "
             "read + compile. \"Keel is\" = the median over rounds of peer ms / Keel ms in the same round (above 1: "
             "Keel is faster). err = max|keel − ort| / "
             "(1e-5 + 1e-3·max|ort|), at most 1 passes.", "",
             "| model | batch | Keel ms | ORT ms | OpenVINO ms | Keel is (ORT) | Keel is (OV) | Keel / ORT / OV RSS MB "
             "| Keel / ORT / OV load ms | err |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        label = row["model"]
        rss = " / ".join(cell(row, e, "rss", 0) for e in ENGINES)
        load = " / ".join(cell(row, e, "load", 0) for e in ENGINES)
        error = f"{row['error']:.2f}" if row["error"] is not None else "—"
        lines.append(f"| {label} | {row['batch']} | {cell(row, 'keel', 'ms')} | {cell(row, 'ort', 'ms')} "
                     f"| {cell(row, 'openvino', 'ms')} | {times(ratio(row, 'ort'))} | {times(ratio(row, 'openvino'))} "
                     f"| {rss} | {load} | {error} |")
    lines.append("")
    for batch in arguments.batches:
        for peer, label in (("ort", "ONNX Runtime"), ("openvino", "OpenVINO")):
            values = [ratio(r, peer) for r in rows if r["batch"] == batch and ratio(r, peer)]
            # Each engine's fastest round too: a burst of host contention slows whole rounds of
            # one engine, and the best rounds compare the engines with those left out.
            best = [ratio(r, peer, "best_ms") for r in rows if r["batch"] == batch and ratio(r, peer, "best_ms")]
            if values:
                lines.append(f"- Batch {batch}: geometric mean of {label} / Keel (per-round ratios) over {len(values)} models: "
                             f"{geometric_mean(values):.2f}× (lowest {min(values):.2f}×); "
                             f"each engine's best round: {geometric_mean(best):.2f}× (lowest {min(best):.2f}×).")
    failures = list(dict.fromkeys(f"{r['model']}: {r['failure']}" for r in rows if r["failure"]))
    for line in failures + notes:
        lines.append(f"- Keel fails on {line}" if line in failures else f"- {line}")
    lines += ["", "Models: " + "; ".join(f"`{name}` {manifest[name].get('description', '')}"
                                         for name in dict.fromkeys(r["model"] for r in rows)) + ".", "", stop]
    output = Path(arguments.output)
    text = output.read_text() if output.exists() else "# Benchmarks\n"
    block = "\n".join(lines)
    text = replace_machine_table(text, *markers, cpu, block)
    output.write_text(text)
    print(f"wrote {output}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--openvino-worker":
        model, input_path, threads, iterations, warmup, output_path = sys.argv[2:8]
        openvino_worker(model, input_path, int(threads), int(iterations), int(warmup), output_path or None)
    else:
        main()
