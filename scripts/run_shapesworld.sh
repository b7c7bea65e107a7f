#!/usr/bin/env bash
# The main job on ShapesWorld: install, generate a 200-image test split, evaluate the shipped
# VLM (greedy captions, POPE, and inference-time grounding with the shipped detector).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m groundloop.worlds.shapes generate --out data/shapes/test --split test --n 200 --seed 0
.venv/bin/python pipelines/evaluate.py --model shapesworld/vlm --data data/shapes/test \
  --grounded --grounding-samples 4 --out runs/shapesworld_eval/report.json
