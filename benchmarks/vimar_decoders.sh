#!/usr/bin/env bash
# ViMaR and its baselines on the 200-image ShapesWorld test split, side by side in one run:
# CHAIR / recall / seconds per caption / model calls per decoder.
#   [OUT=dir] [DECODERS="greedy vimar"] [VALUE=value-model] [DATA=split] [PYTHON=python] \
#     bash benchmarks/vimar_decoders.sh [N_IMAGES] [VLM]
# writes benchmarks/results/vimar/decoders.json (decoder -> metrics) and eval.json
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
vlm=${2:-shapesworld/vlm}
out=${OUT:-benchmarks/results/vimar}
data=${DATA:-data/shapes/test}
py=${PYTHON:-.venv/bin/python}
[ -d "$data" ] || $py -m groundloop.worlds.shapes generate --out "$data" --split test --n 200 --seed 0
mkdir -p "$out"
$py pipelines/evaluate.py --model "$vlm" --data "$data" --n "$n" --no-pope --threads 2 \
    --decoder ${DECODERS:-greedy bon clip_prm visvm vimar} --value "${VALUE:-shapesworld/value}" --clip shapesworld/clip \
    --out "$out/eval.json" 2>&1 | tee "$out/log.txt"
cp "$out/eval.decoders.json" "$out/decoders.json"
