#!/usr/bin/env bash
# Times two keel builds against each other on zoo models, interleaved: every round runs each
# model under build A, then build B, each in its own process, so the host's slow spells (seconds to
# minutes) fall on both. Prints each round's median / min ms and peak RSS MB per build.
# Usage: tools/bench/ab.sh [--rounds N] [--iterations N] KEEL_A KEEL_B MODEL:BATCH...
#   MODEL is a name in models/zoo, models/wider, models/extra, models/timm or models/free (its
#   MODEL.input_bBATCH.npy beside it), or a path to an .onnx file with that input beside it.
# Example: tools/bench/ab.sh --rounds 5 /tmp/keel-main .build/release/keel keras_xception:1 keras_xception:8
set -euo pipefail
cd "$(dirname "$0")/../.."
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
rounds=4 iterations=20
while [[ $# -gt 0 && "$1" == --* ]]; do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --iterations) iterations="$2"; shift 2 ;;
        *) echo "error: unknown option $1" >&2; exit 64 ;;
    esac
done
if [[ $# -lt 3 ]]; then
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 64
fi
builds=("$1" "$2")
shift 2
for build in "${builds[@]}"; do
    [[ -x "$build" ]] || { echo "error: $build is not an executable" >&2; exit 66; }
done

model_path() {
    local name="$1"
    if [[ "$name" == *.onnx ]]; then echo "$name"; return; fi
    for folder in models/zoo models/wider models/extra models/timm models/free; do
        [[ -f "$folder/$name.onnx" ]] && { echo "$folder/$name.onnx"; return; }
    done
    echo "error: no model '$name' under models/ (tools/zoo/build.sh builds them)" >&2
    exit 66
}

for spec in "$@"; do
    name="${spec%:*}" batch="${spec##*:}"
    model="$(model_path "$name")"
    input="${model%.onnx}.input_b$batch.npy"
    [[ -f "$input" ]] || { echo "error: $input not found" >&2; exit 66; }
    declare -a results=("" "")
    for _ in $(seq "$rounds"); do
        for index in 0 1; do
            line="$("${builds[$index]}" bench "$model" --input "$input" --iterations "$iterations" --quiet 2>&1 | tail -1)"
            timing="$(sed -nE 's/.*median ([0-9.]+) ms, min ([0-9.]+) ms.*peak RSS ([0-9.]+) MB.*/\1\/\2\/\3/p' <<<"$line")"
            [[ -n "$timing" ]] || { echo "error: ${builds[$index]} on $model: $line" >&2; exit 1; }
            results[$index]+=" $timing"
        done
    done
    echo "$(basename "$model" .onnx) batch $batch (median/min ms/RSS MB per round)"
    echo "  A ${builds[0]}:${results[0]}"
    echo "  B ${builds[1]}:${results[1]}"
done
