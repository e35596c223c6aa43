#!/usr/bin/env bash
# Keel vs ONNX Runtime on VGG16 (no top, 224x224, fp32): builds keel in release mode, writes the
# model as ONNX with seeded weights, times both on identical inputs and writes BENCHMARKS.md.
# Usage: tools/bench/run.sh [bench.py options, e.g. --rounds 5 --batches 1 8 --threads 1 2]
set -euo pipefail
cd "$(dirname "$0")/../.."
# Both systems run with OpenBLAS's own CPU detection and cache sizes; only this command unsets them.
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
swift build -c release --product keel
exec python3 tools/bench/bench.py --keel "$(swift build -c release --show-bin-path)/keel" "$@"
