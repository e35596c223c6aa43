#!/usr/bin/env bash
# Builds the benchmark model zoo into models/zoo (ignored by git); see tools/zoo/build.py.
# Uses $PYTHON when given (it must have the packages below), otherwise its own virtual environment
# in .venv-zoo (ignored by git), created and filled from PyPI on first use.
# Usage: tools/zoo/build.sh [build.py options, e.g. --only keras_resnet50 --rebuild]
set -euo pipefail
cd "$(dirname "$0")/../.."
packages=(numpy onnx onnxruntime onnxscript tensorflow tf_keras tf2onnx torch torchvision timm)
if [[ -z "${PYTHON:-}" ]]; then
    if [[ ! -x .venv-zoo/bin/python ]]; then
        python3 -m venv .venv-zoo
        .venv-zoo/bin/pip install -q "${packages[@]}"
    fi
    PYTHON=.venv-zoo/bin/python
fi
exec "$PYTHON" tools/zoo/build.py "$@"
