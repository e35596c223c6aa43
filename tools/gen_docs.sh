#!/usr/bin/env bash
# The API reference with swift-docc: symbol graphs of the library's public modules (Keel and the
# stages it re-exports) rendered with the catalog Sources/Keel/Keel.docc into .build/docs, as a
# static site. Uses the toolchain's own `docc`, so it needs no plugin and no network.
set -euo pipefail
cd "$(dirname "$0")/.."
swift=${SWIFT:-swift}
graphs=.build/symbol-graphs
rm -rf "$graphs" .build/docs
mkdir -p "$graphs"
"$swift" package dump-symbol-graph --minimum-access-level public >/dev/null
source=$(find .build -maxdepth 2 -type d -name symbolgraph | head -1)
for module in Keel KeelIR KeelRuntime KeelPasses KeelImages; do
    cp "$source/$module.symbols.json" "$graphs/"
    cp "$source/$module"@*.symbols.json "$graphs/" 2>/dev/null || true
done
docc=$(command -v docc || echo "$(dirname "$(readlink -f "$(command -v "$swift")")")/docc")
"$docc" convert Sources/Keel/Keel.docc --additional-symbol-graph-dir "$graphs" --output-path .build/docs \
    --fallback-display-name Keel --fallback-bundle-identifier org.keel.Keel --transform-for-static-hosting
echo "wrote .build/docs (documentation/keel/index.html)"
