#!/usr/bin/env bash
# The main job on ShapesWorld: install, generate the self-training (val) and held-out (test)
# splits, run one SVP iteration with the committed recipe as a Ray job on a local Ray cluster.
# Writes runs/svp_shapes/report.json, report.md and chair_recall.png (about 13 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m groundloop.worlds.shapes generate --out data/shapes/val --split val --n 1000 --seed 0
.venv/bin/python -m groundloop.worlds.shapes generate --out data/shapes/test --split test --n 200 --seed 0
.venv/bin/python pipelines/svp.py --config configs/svp_shapes.yaml "$@"
