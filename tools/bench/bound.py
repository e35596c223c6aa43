#!/usr/bin/env python3
"""How far each model's time could fall: a lower bound on Keel's time per model, against the peers'.

For each row of a zoo run (`tools/bench/run.sh --json ROWS.json`), profiles Keel on the same input
and adds up, layer by layer, the time the layer's multiply-adds would take at --peak GFLOP/s (the
cores' FMA rate: Zen 4 at ~3.4 GHz, 2 cores × 32 FLOP per cycle ≈ 218), with two allowances no
engine gets: layers Keel runs on Winograd's transforms count F(6×6, 3×3)'s 5.06× fewer multiplies
(Keel's largest tile is F(4×4), 4×), and every memory-bound step (depthwise, pooling, element-wise,
data movement) counts nothing. The bound is then unattainable by construction, and
peer ms / bound is the most any engine could show against that peer with the multiplies these
models have.

Usage: $PYTHON tools/bench/bound.py ROWS.json --peak 218 [--keel .build/release/keel] [--zoo models/zoo]
"""
import argparse
import json
import math
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WINOGRAD_F6_REDUCTION = 36 * 9 / 64


def bound_ms(keel, model, input_path, peak):
    """The model's lower bound in ms, from one profiled run's per-layer FLOP counts."""
    data = json.loads(subprocess.run([str(keel), "bench", str(model), "--input", str(input_path), "--iterations", "2",
                                      "--profile", "--json"], capture_output=True, text=True, check=True).stdout)
    total = 0.0
    for layer in data["layers"]:
        flops = layer["gflops_per_s"] * 1e9 * layer["ms"] / 1e3
        reduction = WINOGRAD_F6_REDUCTION if "winograd" in layer["kernel"] else 1.0
        total += flops / reduction / (peak * 1e9) * 1e3
    return total


def geometric_mean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", help="the rows tools/bench/run.sh --json wrote")
    parser.add_argument("--peak", type=float, required=True, help="GFLOP/s of all the threads' FMA units together")
    parser.add_argument("--keel", default=str(ROOT / ".build" / "release" / "keel"))
    parser.add_argument("--zoo", default=str(ROOT / "models" / "zoo"))
    arguments = parser.parse_args()
    rows = json.loads(Path(arguments.rows).read_text())
    zoo = Path(arguments.zoo)
    print("| model | batch | Keel ms | bound ms | ORT ms | OpenVINO ms | ORT / Keel | ORT / bound | OpenVINO / bound |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios = {}
    for row in rows:
        if "keel" not in row or "ort" not in row:
            continue
        name, batch = row["model"], row["batch"]
        bound = bound_ms(arguments.keel, zoo / f"{name}.onnx", zoo / f"{name}.input_b{batch}.npy", arguments.peak)
        keel, ort = row["keel"]["ms"], row["ort"]["ms"]
        openvino = row.get("openvino", {}).get("ms")
        ratios.setdefault(batch, []).append((ort / keel, ort / bound, openvino / bound if openvino else None))
        print(f"| {name} | {batch} | {keel:.1f} | {bound:.1f} | {ort:.1f} | {openvino or float('nan'):.1f} "
              f"| {ort / keel:.2f}× | {ort / bound:.2f}× | {openvino / bound if openvino else float('nan'):.2f}× |", flush=True)
    print()
    for batch, values in sorted(ratios.items()):
        peers = [v[2] for v in values if v[2]]
        print(f"- Batch {batch}, {len(values)} models: ORT / Keel {geometric_mean([v[0] for v in values]):.2f}×, "
              f"ORT / bound {geometric_mean([v[1] for v in values]):.2f}×"
              + (f", OpenVINO / bound {geometric_mean(peers):.2f}×" if peers else "") + ".")


if __name__ == "__main__":
    main()
