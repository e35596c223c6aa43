#!/usr/bin/env bash
# Whether two keel builds give byte-identical outputs on every built model: runs each model of the
# given folders (default: every models/* folder) at one batch under both builds and compares the
# .npy files byte for byte. A model whose outputs differ gets its error against ONNX Runtime's
# reference (max|keel − ort| / (1e-5 + 1e-3·max|ort|), at most 1 passes), which needs $PYTHON with
# numpy. Exit status 1 when a model fails under build B.
# Usage: tools/bench/same_outputs.sh [--batch B] KEEL_A KEEL_B [FOLDER...]
# Example: tools/bench/same_outputs.sh --batch 8 /tmp/keel-main .build/release/keel models/zoo
set -euo pipefail
cd "$(dirname "$0")/../.."
batch=1
if [[ "${1:-}" == --batch ]]; then batch="$2"; shift 2; fi
if [[ $# -lt 2 ]]; then
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 64
fi
build_a="$1" build_b="$2"
shift 2
folders=("$@")
[[ ${#folders[@]} -gt 0 ]] || folders=(models/*/)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
same=0 changed=0 failed=0
for folder in "${folders[@]}"; do
    for model in "${folder%/}"/*.onnx; do
        [[ -f "$model" ]] || continue
        name="$(basename "$model" .onnx)" input="${model%.onnx}.input_b$batch.npy"
        [[ -f "$input" ]] || continue
        if ! "$build_b" run "$model" --input "$input" --output "$work/b.npy" --quiet >/dev/null 2>"$work/error"; then
            echo "$name: fails under $build_b: $(tail -1 "$work/error")"
            failed=$((failed + 1))
            continue
        fi
        if ! "$build_a" run "$model" --input "$input" --output "$work/a.npy" --quiet >/dev/null 2>&1; then
            echo "$name: fails under $build_a only"
            changed=$((changed + 1))
        elif cmp -s "$work/a.npy" "$work/b.npy"; then
            same=$((same + 1))
        else
            reference="${model%.onnx}.ort_b$batch.npy"
            error="$("${PYTHON:-python3}" -c 'import sys, numpy as n; a, r = n.load(sys.argv[1]), n.load(sys.argv[2])
print(f"{float(n.abs(a - r).max() / (1e-5 + 1e-3 * n.abs(r).max())):.3f}")' "$work/b.npy" "$reference" 2>/dev/null || echo "?")"
            echo "$name: outputs differ; error against ONNX Runtime $error"
            changed=$((changed + 1))
        fi
    done
done
echo "batch $batch: $same models byte for byte the same, $changed different, $failed failing under $build_b"
[[ $failed -eq 0 ]]
