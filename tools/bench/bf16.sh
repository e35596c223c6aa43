#!/usr/bin/env bash
# Keel bf16 vs OpenVINO bf16 and Keel fp32 on VGG16 and its two heads (224x224, 2 threads, batches
# 1 and 8), plus the accuracy bf16 costs; writes the bf16 section of BENCHMARKS.md.
# Needs numpy, onnx, openvino and pillow in $PYTHON (default python3).
# Usage: tools/bench/bf16.sh [bf16.py options, e.g. --rounds 5 --batches 1 8 --no-write]
set -euo pipefail
cd "$(dirname "$0")/../.."
# Every engine runs with OpenBLAS's own CPU detection and cache sizes; only this command unsets them.
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
swift build -c release --product keel
exec "${PYTHON:-python3}" tools/bench/bf16.py --keel "$(swift build -c release --show-bin-path)/keel" "$@"
