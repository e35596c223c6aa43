#!/bin/bash
# Builds and runs the depthwise micro-benchmark: tools/depthwise_bench/run.sh [shape filter] [seconds].
# Compiles Keel's C kernels the way a release build does (-O2) into .build/depthwise_bench.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/.build/depthwise_bench"
mkdir -p "$out"
kernels="$root/Sources/CSIMDKernels"
${CC:-clang} -O2 -std=gnu11 -Wno-pass-failed -I "$kernels/include" -I "$kernels" "$root/tools/depthwise_bench/depthwise_bench.c" \
    "$kernels"/*.c -o "$out/depthwise_bench" -lm -lpthread
exec "$out/depthwise_bench" "$@"
