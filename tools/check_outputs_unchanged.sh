#!/usr/bin/env bash
# Checks that a change to the compiler leaves every graph's outputs bit-identical: runs each
# graphs/*.keel model (with seeded weights, on two sample images) with two keel binaries at
# -O0 and -O2 and compares the .npy files byte for byte. Exits 1 on any difference.
#
# Usage: tools/check_outputs_unchanged.sh BEFORE_KEEL AFTER_KEEL
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -eq 2 ]] || { echo "usage: $0 BEFORE_KEEL AFTER_KEEL" >&2; exit 2; }
before=$1 after=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

status=0
for graph in graphs/*.keel; do
    grep -q '^model ' "$graph" || continue   # block libraries have nothing to run
    for level in -O0 -O2; do
        stem="$out/$(basename "$graph" .keel)$level"
        for side in before after; do
            binary=$before
            [[ $side == after ]] && binary=$after
            "$binary" run "$graph" $level --seed 7 --threads 1 --image samples/chelsea.jpg --image samples/coffee.jpg \
                --output "$stem.$side.npy" >/dev/null 2>"$stem.$side.log" \
                || { echo "run failed: $binary $graph $level" >&2; cat "$stem.$side.log" >&2; exit 1; }
        done
        for file in "$stem".before*.npy; do
            twin=${file/.before/.after}
            if cmp -s "$file" "$twin"; then
                echo "same       $(basename "$twin")"
            else
                echo "DIFFERENT  $(basename "$twin")"
                status=1
            fi
        done
    done
done
exit $status
