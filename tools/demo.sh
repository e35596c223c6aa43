#!/usr/bin/env bash
# The main job on the bundled default: check and summarise the two-head transfer-learning graph,
# extract VGG16 features from the bundled sample photos, and run both heads on them, with timings.
set -euo pipefail
keel=${1:-.build/release/keel}
graph=graphs/vgg16_two_heads.keel
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

timed() {
    local start=$(date +%s%N)
    "$@"
    echo "  ($(( ($(date +%s%N) - start) / 1000000 )) ms)"
}

echo "== keel check $graph"
timed "$keel" check "$graph"
echo
echo "== keel summary $graph"
"$keel" summary "$graph"
echo
echo "== keel extract: VGG16 block5_pool features of the photos in samples/"
timed "$keel" extract "$graph" --at block5_pool samples --output "$work/features.npy" --batch 4
echo
echo "== keel run: both heads on three photos (ResNet-style logits, top 3; ViT tokens written to .npy)"
timed "$keel" run "$graph" --image samples/chelsea.jpg --image samples/coffee.jpg --image samples/astronaut.jpg \
    --output "$work/heads.npy" --top 3
echo
echo "== keel compile -o: the optimised graph and weights in one file, mapped back at start-up"
timed "$keel" compile "$graph" -o "$work/two_heads.keelc"
timed "$keel" run "$work/two_heads.keelc" --image samples/rocket.jpg --top 1
echo
echo "All weights above are seeded-random (Keras's default initialisers): the classes are not meaningful."
echo "Bind real ones with --weights model.onnx (see README)."
