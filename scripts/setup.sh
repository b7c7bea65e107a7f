#!/usr/bin/env bash
# Create .venv with everything groundloop needs (CPU torch first: the pinned wheel lies on
# disk here; an unpinned torch would pull GBs of CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev]"
echo "groundloop installed in .venv"
