#!/usr/bin/env bash
# Rebuild the three shipped ShapesWorld models from scratch, seeded. Measured on 2 CPU cores:
# detector ~25 s; VLM phase 1 ~27 min + phase 2 ~45 min; CLIP ~17 + 10 + 8 + 7.5 min (docs/results/foundation.md).
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
out=groundloop/assets/shapesworld
time $py -m recipes.worlds.train_detector --out $out/detector --seed 0
# VLM phase 1: captions, grounded captions and QA from scratch (stopped at its step-2000
# checkpoint of a 60-minute wall-clock cosine schedule, with sized context phrases).
time $py -m recipes.worlds.train_vlm --out /tmp/groundloop_vlm_phase1 --seed 0 --minutes 60 --max-steps 2000 \
    --patch-aux 0
# VLM phase 2: continue with the per-patch auxiliary loss on the vision tower.
time $py -m recipes.worlds.train_vlm --out $out/vlm --resume /tmp/groundloop_vlm_phase1 --steps 2800 \
    --minutes 200 --lr 8e-4 --seed 1
# vlm-b: a second, architecturally different VLM (vision tower 3 x 96 instead of 4 x 128, LM 2 x 192
# instead of 3 x 160), one phase of 2000 steps with the per-patch loss from the start (~30 min).
time $py -m recipes.worlds.train_vlm --out $out/vlm-b --vision-hidden 96 --vision-layers 3 --lm-hidden 192 \
    --lm-layers 2 --steps 2000 --max-steps 2000 --minutes 45 --seed 2 --threads 2
# CLIP starts from the VLM's vision tower.
time $py -m recipes.worlds.train_clip --out /tmp/groundloop_clip_phase1 --seed 0  # 3500 steps, ~17 min
time $py -m recipes.worlds.train_clip --init /tmp/groundloop_clip_phase1 --out /tmp/groundloop_clip_phase2 \
    --steps 2000 --lr 3e-4 --seed 3  # ~10 min
# Phases 3 and 4: fresh scenes with the deployment (val) co-occurrence prior, lower rates.
time $py -m recipes.worlds.train_clip --init /tmp/groundloop_clip_phase2 --out /tmp/groundloop_clip_phase3 \
    --steps 1500 --lr 2e-4 --seed 5 --split val --n-eval 150  # ~8 min
time $py -m recipes.worlds.train_clip --init /tmp/groundloop_clip_phase3 --out $out/clip \
    --steps 1500 --lr 1e-4 --seed 11 --split val --n-eval 150  # ~7.5 min
# VL-GenRM: responses of the shipped VLM on fresh val-prior scenes, checked by the shipped
# detector; stage 0 + stage 1 + 2 stage-2 rounds (~35 min), shipped with its stage-0 VLM.
[ -d data/genrm_train ] || $py -m groundloop.worlds.shapes generate --out data/genrm_train --split val --n 2500 --seed 13
[ -d data/shapes/test ] || $py -m groundloop.worlds.shapes generate --out data/shapes/test --split test --n 200 --seed 0
time $py pipelines/genrm.py --config configs/genrm_shapes.yaml --out $out/genrm
