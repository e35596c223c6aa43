#!/usr/bin/env bash
# -O0 against -O2 on every graph in graphs/, seeded weights, in one run: median ms, peak RSS and
# whether the outputs still agree (max|a-b| / max|b|). Prints a markdown table for BENCHMARKS.md.
# Like tools/bench/run.sh, it unsets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for the benchmark only.
# Usage: tools/bench/levels.sh [batch] [threads]
set -euo pipefail
cd "$(dirname "$0")/../.."
batch=${1:-1}
threads=${2:-2}
swift build -c release >/dev/null
keel=.build/release/keel
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -c "import numpy as np, sys; np.save(sys.argv[1], np.random.default_rng(0).uniform(-100, 100, ($batch, 224, 224, 3)).astype('<f4'))" "$work/x.npy"

echo "| graph | batch | threads | -O0 ms | -O2 ms | -O0/-O2 | -O0 RSS MB | -O2 RSS MB | max rel. diff |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for graph in graphs/vgg16.keel graphs/vgg16_top.keel graphs/vgg16_resnet_head.keel graphs/vgg16_vit_head.keel graphs/vgg16_two_heads.keel; do
    declare -A ms rss
    for level in 0 2; do
        json=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$keel" bench "$graph" -O$level --input "$work/x.npy" \
               --iterations 5 --warmup 1 --threads "$threads" --json 2>/dev/null)
        ms[$level]=$(python3 -c "import json,sys; print('%.1f' % json.loads(sys.argv[1])['median_ms'])" "$json")
        rss[$level]=$(python3 -c "import json,sys; print('%.0f' % json.loads(sys.argv[1])['peak_rss_mb'])" "$json")
        env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$keel" run "$graph" -O$level --input "$work/x.npy" \
            --output "$work/y$level.npy" --threads "$threads" >/dev/null 2>&1
    done
    diff=$(python3 - "$work" <<'PY'
import glob, sys, numpy as np
work = sys.argv[1]
worst = 0.0
for a in sorted(glob.glob(work + "/y0*.npy")):
    b = np.load(a.replace("/y0", "/y2")); a = np.load(a)
    worst = max(worst, float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30)))
print("%.1e" % worst)
PY
)
    rm -f "$work"/y*.npy
    ratio=$(python3 -c "print('%.2f×' % (${ms[0]} / ${ms[2]}))")
    echo "| $(basename "$graph") | $batch | $threads | ${ms[0]} | ${ms[2]} | $ratio | ${rss[0]} | ${rss[2]} | $diff |"
done
