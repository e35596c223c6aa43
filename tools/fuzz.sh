#!/usr/bin/env bash
# Builds the libFuzzer harness (Fuzz/, everything instrumented with -sanitize=fuzzer,address) and
# runs each reader for SECONDS seconds, one after another (one core each):
#   tools/fuzz.sh [SECONDS] [target...]      targets: keel npy onnx keelc image (default: all)
# Seeds come from Fuzz/Corpus/<target>; inputs found interesting go to .build/fuzz-corpus/<target>
# (not committed); a crash, leak or hang (>10 s) is written to Fuzz/Crashes/<target>/, which the
# test suite replays, and the run stops with a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}; shift || true
TARGETS=("$@"); [ ${#TARGETS[@]} -gt 0 ] || TARGETS=(keel npy onnx keelc image)
swift build -c release --package-path Fuzz --scratch-path .build/fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xcc -fsanitize=fuzzer-no-link,address
BINARY=.build/fuzz/release/KeelFuzz
for target in "${TARGETS[@]}"; do
    mkdir -p ".build/fuzz-corpus/$target" "Fuzz/Crashes/$target"
    echo "== $target: ${SECONDS_EACH}s"
    KEEL_FUZZ_TARGET=$target ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 "$BINARY" \
        ".build/fuzz-corpus/$target" "Fuzz/Corpus/$target" \
        -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
        -artifact_prefix="Fuzz/Crashes/$target/" -print_final_stats=1 2>&1 | tee ".build/fuzz-$target.log" | grep -E "^#|ERROR|SUMMARY|stat::|Done" | tail -12
done
