#!/usr/bin/env bash
# Rebuild the three shipped ShapesWorld models from scratch, seeded (see README for timings).
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
out=groundloop/assets/shapesworld
time $py -m groundloop.worlds.train_detector --out $out/detector --seed 0
time $py -m groundloop.worlds.train_clip --out $out/clip --seed 0
time $py -m groundloop.worlds.train_vlm --out $out/vlm --seed 0 --minutes 65 --threads 1
