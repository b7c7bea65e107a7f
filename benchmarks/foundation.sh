#!/usr/bin/env bash
# The foundation's bars, measured on freshly generated held-out ShapesWorld splits (seed $1,
# default 0) and written to benchmarks/results/*.json:
#   detector.json            detector precision/recall at IoU >= 0.5, present and absent queries (val)
#   clip_ranking.json        CLIP top-1 among the true sentence and 9 one-attribute variants (val)
#   vlm_test200.json         greedy captions and grounding of the greedy prior only (test)
#   vlm_test200_k4.json      greedy captions, POPE, and grounding the greedy prior plus 4 sampled captions (test)
#   [N=200] [DATA=data/bench_seed$seed] [OUT=benchmarks/results] [PYTHON=.venv/bin/python] bash benchmarks/foundation.sh [seed]
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${1:-0}
py=${PYTHON:-.venv/bin/python}
n=${N:-200}
d=${DATA:-data/bench_seed$seed}
r=${OUT:-benchmarks/results}
$py -m groundloop.worlds.shapes generate --out $d/test --split test --n "$n" --seed "$seed"
$py -m groundloop.worlds.shapes generate --out $d/val --split val --n "$n" --seed "$seed"
$py benchmarks/detector.py --data $d/val --out $r/detector.json --seed "$seed"
$py benchmarks/clip_ranking.py --data $d/val --out $r/clip_ranking.json --seed "$seed"
$py pipelines/evaluate.py --model shapesworld/vlm --data $d/test --grounded --no-pope --seed "$seed" \
    --out $r/vlm_test200.json
$py pipelines/evaluate.py --model shapesworld/vlm --data $d/test --grounded --grounding-samples 4 \
    --seed "$seed" --out $r/vlm_test200_k4.json
