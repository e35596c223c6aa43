#!/usr/bin/env bash
# Checks Keel's VGG16 + resnet head against ONNX Runtime, with weights from ONNX files:
#   keel run model.onnx                                   (the exported model itself)
#   keel run graphs/vgg16_resnet_head.keel --weights ...  (the .keel graph, weights bound by name)
#   ... --weights pytorch.onnx --match order              (bound by order, NCHW flatten permuted)
# at batch 1 and 8. Softmax outputs must agree within 1e-4 absolute, logits within 1e-4
# relative to the output's scale (max|a-b| / max|b|). Prints a table; exits 1 on a mismatch.
#
# Usage: tools/check_vgg16.sh [MODELS_DIR]   (default models/vgg16, generated when missing)
set -euo pipefail
cd "$(dirname "$0")/.."

models=${1:-models/vgg16}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

swift build -c release --product keel >&2
keel=.build/release/keel

if [[ ! -f "$models/tf2onnx_b8_logits.npy" || ! -f "$models/pytorch_b8_logits.npy" ]]; then
    python3 tools/gen_vgg16_onnx.py "$models" >&2
fi

rows=()
# run LABEL BATCH REFERENCE_PREFIX KEEL_ARGS...: runs keel, records each output against ONNX Runtime's.
run() {
    local label=$1 batch=$2 reference=$3
    shift 3
    local stem="$out/$(echo "$label" | tr ' /' '__')_b$batch"
    "$keel" run "$@" --output "$stem.npy" >/dev/null 2>"$stem.log" || { cat "$stem.log" >&2; rows+=("$label|$batch|-|run failed|$stem.log"); return; }
    if [[ -f "$stem.logits.npy" ]]; then
        rows+=("$label|$batch|logits|$stem.logits.npy|${reference}_logits.npy")
        rows+=("$label|$batch|softmax|$stem.softmax.npy|${reference}_softmax.npy")
    else
        rows+=("$label|$batch|logits|$stem.npy|${reference}_logits.npy")
    fi
}

for batch in 1 8; do
    input="$models/input_b$batch.npy"
    nchw="$models/input_b${batch}_nchw.npy"
    run "tf2onnx.onnx" "$batch" "$models/tf2onnx_b$batch" "$models/tf2onnx.onnx" --input "$input"
    run ".keel --weights tf2onnx (name)" "$batch" "$models/tf2onnx_b$batch" graphs/vgg16_resnet_head.keel --weights "$models/tf2onnx.onnx" --input "$input"
    run "pytorch.onnx" "$batch" "$models/pytorch_b$batch" "$models/pytorch.onnx" --input "$nchw"
    run ".keel --weights pytorch (order)" "$batch" "$models/pytorch_b$batch" graphs/vgg16_resnet_head.keel --weights "$models/pytorch.onnx" --match order --input "$input"
done

cat >"$out/compare.py" <<'PY'
import sys
import numpy as np
failed = False
print(f"{'model':34} {'batch':>5} {'output':8} {'max|a-b|':>10} {'max|b|':>9} {'error':>10}  limit           result")
for line in sys.stdin:
    label, batch, output, actual, expected = line.rstrip("\n").split("|")
    if output == "-":
        print(f"{label:34} {batch:>5} run failed (see above)")
        failed = True
        continue
    a, b = np.load(actual), np.load(expected)
    if a.shape != b.shape:
        print(f"{label:34} {batch:>5} {output:8} shapes {a.shape} vs {b.shape}  FAIL")
        failed = True
        continue
    difference = float(np.abs(a - b).max())
    scale = float(np.abs(b).max())
    if output == "softmax":
        error, kind = difference, "absolute"
    else:
        error, kind = difference / max(scale, 1e-30), "relative"
    ok = error <= 1e-4
    failed |= not ok
    print(f"{label:34} {batch:>5} {output:8} {difference:10.3e} {scale:9.3e} {error:10.3e}  1e-4 {kind:8}  {'ok' if ok else 'FAIL'}")
sys.exit(1 if failed else 0)
PY
printf '%s\n' "${rows[@]}" | python3 "$out/compare.py"
