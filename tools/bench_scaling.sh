#!/usr/bin/env bash
# Times `keel check` and `keel run` on ReLU chains of 1k, 10k and 100k nodes, as .keel and as ONNX
# (the figures in BENCHMARKS.md, "Scaling with graph size"). Models are generated in a temp folder;
# ONNX ones with $PYTHON (numpy + onnx), else tools/.venv as tools/gen_nonfinite_fixtures.sh makes it.
#   tools/bench_scaling.sh [path/to/keel] [sizes...]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
KEEL="${1:-$ROOT/.build/release/keel}"; shift || true
SIZES=("$@"); [ ${#SIZES[@]} -gt 0 ] || SIZES=(1000 10000 100000)
PYTHON="${PYTHON:-$ROOT/tools/.venv/bin/python}"
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
"$PYTHON" - "$WORK" <<'PY'
import sys, numpy as np
np.save(sys.argv[1] + "/x.npy", np.linspace(-4, 4, 8 * 64, dtype=np.float32).reshape(8, 64))
PY
# "wall (CPU)" in seconds: on a shared machine the CPU time (user + sys) is the steadier figure.
seconds() {
    local TIMEFORMAT='%R %U %S' times
    times=$( { time "$@" >/dev/null 2>&1; } 2>&1 ) || { echo "failed: $*" >&2; exit 1; }
    read -r wall user system <<<"$times"
    printf '%.2f (%.2f)' "$wall" "$(echo "$user + $system" | bc)"
}
printf '| nodes | format | check, s wall (CPU) | run, batch 8, s wall (CPU) |\n|---:|---|---:|---:|\n'
for n in "${SIZES[@]}"; do
    { echo "model chain"; echo "input x: f32[N, 64]"; for ((i = 0; i < n; i++)); do echo "r$i = relu()"; done; } > "$WORK/chain$n.keel"
    "$PYTHON" - "$WORK/chain$n.onnx" "$n" <<'PY'
import sys
from onnx import TensorProto, helper, save
path, n = sys.argv[1], int(sys.argv[2])
nodes = [helper.make_node("Relu", ["x" if i == 0 else f"r{i - 1}"], [f"r{i}"]) for i in range(n)]
graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
                          [helper.make_tensor_value_info(f"r{n - 1}", TensorProto.FLOAT, ["N", 64])])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]); model.ir_version = 8
save(model, path)
PY
    for format in keel onnx; do
        check=$(seconds "$KEEL" check "$WORK/chain$n.$format")
        run=$(seconds "$KEEL" run "$WORK/chain$n.$format" --input "$WORK/x.npy" --output "$WORK/out.npy" --threads 2)
        # The numbers must be right too: a ReLU chain computes max(x, 0).
        "$PYTHON" -c "import numpy as np, sys; x = np.load('$WORK/x.npy'); y = np.load('$WORK/out.npy'); sys.exit(0 if np.array_equal(y, np.maximum(x, 0)) else 1)" \
            || { echo "chain$n.$format: wrong output" >&2; exit 1; }
        printf '| %s | %s | %s | %s |\n' "$n" "$format" "$check" "$run"
    done
done
