#!/usr/bin/env bash
# The main job on the bundled default: check and summarise the two-head transfer-learning graph,
# then run both heads on a batch of 1 and of 8 with seeded-random weights.
set -euo pipefail
keel=${1:-.build/release/keel}
graph=graphs/vgg16_two_heads.keel
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== keel check $graph"
"$keel" check "$graph"
echo
echo "== keel summary $graph"
"$keel" summary "$graph"

for batch in 1 8; do
    python3 tools/random_input.py "$work/x$batch.npy" "$batch" 224 224 3
    echo
    echo "== keel run $graph (batch $batch)"
    start=$(date +%s%N)
    "$keel" run "$graph" --input "$work/x$batch.npy" --output "$work/y$batch.npy"
    echo "wall time: $(( ($(date +%s%N) - start) / 1000000 )) ms"
done
echo
echo "Weights above are seeded-random: pass --weights model.onnx for real ones."
