#!/bin/bash
# Builds and runs the GEMM micro-benchmark: tools/gemm_bench/run.sh [seconds per measurement] [model filter].
# Compiles Keel's C kernels the way a release build does (-O2) into .build/gemm_bench; needs libopenblas-dev.
# KEEL_SIMD=avx2 times the AVX2 body on an AVX-512 machine; GEMM_BENCH_SPLIT=1 compares the two thread splits;
# GEMM_BENCH_COLD=MB reads B from memory as a model does (a new copy of its panels each call, MB in all);
# GEMM_BENCH_COLD_A=MB reads A (the activations) from memory instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/.build/gemm_bench"
mkdir -p "$out"
kernels="$root/Sources/CSIMDKernels"
${CC:-clang} -O2 -std=gnu11 -I "$kernels/include" -I "$kernels" $(pkg-config --cflags openblas) \
    "$root/tools/gemm_bench/gemm_bench.c" "$kernels"/*.c -o "$out/gemm_bench" $(pkg-config --libs openblas) -lm
unset OPENBLAS_L2_SIZE
# Keel's own runs re-select OpenBLAS's core when 0.3.21 falls back to Prescott on this CPU
# (BLASCoreSelection.swift): compare against the core Keel's OpenBLAS path actually uses.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    if grep -q avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
    elif grep -q avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell; fi
fi
exec "$out/gemm_bench" "$@"
