#!/usr/bin/env bash
# Benchmarks Keel against its peers and writes BENCHMARKS.md; builds keel in release mode first.
# Usage: tools/bench/run.sh [zoo.py options]        every backbone of models/zoo (tools/zoo/build.sh builds
#                                                   them): Keel, ONNX Runtime and OpenVINO, batch 1 and 8
#        tools/bench/run.sh --set wider               the held-out backbones of models/wider
#                                                   (tools/zoo/build.sh --set wider), into their own table
#        tools/bench/run.sh --set free                exports with a free image size, models/free
#                                                   (tools/zoo/build.sh --set free), into their own table
#        tools/bench/run.sh vgg16 [bench.py options] VGG16 (no top, heads, top) against ONNX Runtime,
#                                                   e.g. --rounds 5 --batches 1 8 --threads 1 2
# $PYTHON (default python3) needs numpy, onnx, onnxruntime and, for the zoo, openvino.
set -euo pipefail
cd "$(dirname "$0")/../.."
# Every engine runs with OpenBLAS's own CPU detection and cache sizes; only this command unsets them.
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
swift build -c release --product keel
keel="$(swift build -c release --show-bin-path)/keel"
if [[ "${1:-}" == vgg16 ]]; then
    shift
    exec "${PYTHON:-python3}" tools/bench/bench.py --keel "$keel" "$@"
fi
exec "${PYTHON:-python3}" tools/bench/zoo.py --keel "$keel" "$@"
