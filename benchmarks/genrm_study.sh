#!/usr/bin/env bash
# VL-GenRM on ShapesWorld: the recipe run, its baselines and the expert-noise study, then the
# summary table and plot. Baselines and noise runs re-judge the recipe run's own responses
# (data.responses_from), so every variant trains on pairs built from the same samples.
#   bash benchmarks/genrm_study.sh            # all of it (~1.5 h on 2 cores)
#   STEPS="main bon" bash benchmarks/genrm_study.sh
# writes runs/genrm_*/report.json and benchmarks/results/genrm/{summary.json,summary.md,noise.png}
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
out=benchmarks/results/genrm
mkdir -p "$out" logs
[ -d data/genrm_train ] || $py -m groundloop.worlds.shapes generate --out data/genrm_train --split val --n 2500 --seed 13
[ -d data/shapes/test ] || $py -m groundloop.worlds.shapes generate --out data/shapes/test --split test --n 200 --seed 0
steps=${STEPS:-main bon self description noise}
# Baselines and noise runs re-judge the recipe run's responses and stop after stage 1; compare
# them with the recipe run's round 0. Each trains its own stage 0 on its own labels (the
# self-labelled baseline has no expert, so no boxes for grounded attention), except the
# description baseline, which changes only the chain of thought and shares the recipe's stage 0.
reuse="data.responses_from=runs/genrm_shapes/samples.parquet stage2.rounds=0"
for step in $steps; do
  case $step in
    main) $py pipelines/genrm.py --config configs/genrm_shapes.yaml --out runs/genrm_shapes/shipped 2>&1 \
            | tee logs/genrm_shapes.log ;;
    bon) $py benchmarks/genrm_best_of_n.py --reward-model runs/genrm_shapes/shipped \
           --data data/shapes/test --n-images 100 --n 16 --out $out/best_of_16.json 2>&1 | tee logs/genrm_bon.log ;;
    self) $py pipelines/genrm.py --config configs/genrm_shapes.yaml run.name=genrm_self pairs.labeler=self \
            stage0.attn_weight=0 $reuse 2>&1 | tee logs/genrm_self.log ;;
    description) $py pipelines/genrm.py --config configs/genrm_shapes.yaml run.name=genrm_description \
                   pairs.thought=description sampling.critique=free train.learn=all \
                   stage0.vlm_from=runs/genrm_shapes/stage0/vlm $reuse 2>&1 | tee logs/genrm_description.log ;;
    noise) for r in ${NOISE:-0.2 0.4}; do
             $py pipelines/genrm.py --config configs/genrm_shapes.yaml run.name=genrm_noise_$r \
               pairs.miss_rate=$r pairs.false_alarm_rate=$r $reuse 2>&1 | tee logs/genrm_noise_$r.log
           done ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
$py benchmarks/genrm_summary.py --runs runs --out $out
