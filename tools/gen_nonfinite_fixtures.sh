#!/usr/bin/env bash
# Regenerates Tests/KeelTests/Fixtures/nonfinite with ONNX Runtime. Uses $PYTHON when given,
# else a virtual environment of its own in tools/.venv (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ ! -x tools/.venv/bin/python ]; then
        python3 -m venv tools/.venv
        tools/.venv/bin/pip install -q numpy onnx onnxruntime
    fi
    PYTHON=tools/.venv/bin/python
fi
exec "$PYTHON" tools/gen_nonfinite_fixtures.py
