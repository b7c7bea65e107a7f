#!/usr/bin/env bash
# The foundation's bars, measured on held-out ShapesWorld data (seed given as $1, default 0)
# and written to benchmarks/results/*.json:
#   vlm_test200.json     greedy captions + inference-time grounding of the shipped VLM
#   detector.json        detector precision/recall at IoU >= 0.5, present and absent queries
#   clip_ranking.json    CLIP top-1 among the true sentence and 9 one-attribute variants
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${1:-0}
py=.venv/bin/python
d=data/bench_seed$seed
$py -m groundloop.worlds.shapes generate --out $d/test --split test --n 200 --seed "$seed"
$py -m groundloop.worlds.shapes generate --out $d/val --split val --n 200 --seed "$seed"
$py benchmarks/detector.py --data $d/val --out benchmarks/results/detector.json --seed "$seed"
$py benchmarks/clip_ranking.py --data $d/val --out benchmarks/results/clip_ranking.json --seed "$seed"
$py pipelines/evaluate.py --model shapesworld/vlm --data $d/test --grounded \
    --out benchmarks/results/vlm_test200.json
