#!/usr/bin/env bash
# ViMaR and its baselines on the 200-image ShapesWorld test split, side by side in one run:
# CHAIR / recall / seconds per caption / model calls per decoder.
#   [OUT=dir] [DECODERS="greedy vimar"] [VALUE=value-model] bash benchmarks/vimar_decoders.sh [N_IMAGES] [VLM]
# writes benchmarks/results/vimar/decoders.json (decoder -> metrics) and eval.json
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
vlm=${2:-shapesworld/vlm}
out=${OUT:-benchmarks/results/vimar}
[ -d data/shapes/test ] || .venv/bin/python -m groundloop.worlds.shapes generate --out data/shapes/test --split test --n 200 --seed 0
mkdir -p "$out"
.venv/bin/python pipelines/evaluate.py --model "$vlm" --data data/shapes/test --n "$n" --no-pope --threads 2 \
    --decoder ${DECODERS:-greedy bon clip_prm visvm vimar} --value "${VALUE:-shapesworld/value}" --clip shapesworld/clip \
    --out "$out/eval.json" 2>&1 | tee "$out/log.txt"
cp "$out/eval.decoders.json" "$out/decoders.json"
