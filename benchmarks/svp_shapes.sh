#!/usr/bin/env bash
# SVP's fidelity bars on ShapesWorld: the committed recipe (configs/svp_shapes.yaml) plus the
# no_feedback and no_scoring ablations with the same budget, evaluated on a 200-image test
# split; report.json, report.md and the plot are copied to benchmarks/results/svp_shapes/
# (svp_shapes_seedN/ for another seed).
#   bash benchmarks/svp_shapes.sh [seed]
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${1:-0}
py=.venv/bin/python
$py -m groundloop.worlds.shapes generate --out data/shapes/val --split val --n 1000 --seed "$seed"
$py -m groundloop.worlds.shapes generate --out data/shapes/test --split test --n 200 --seed "$seed"
name=svp_shapes_seed$seed
$py pipelines/svp.py --config configs/svp_shapes.yaml run.name=$name run.seed="$seed" \
    "svp.compare_ablations=[no_feedback,no_scoring]"
out=benchmarks/results/svp_shapes; [[ "$seed" != 0 ]] && out=${out}_seed$seed
mkdir -p $out
cp runs/$name/report.json runs/$name/report.md runs/$name/chair_recall.png $out/
