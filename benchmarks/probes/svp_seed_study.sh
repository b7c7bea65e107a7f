#!/usr/bin/env bash
# One-off probe. Question: how much of the SVP-vs-ablation gap is training noise? After
# benchmarks/svp_shapes.sh, re-run only the LoRA stage (same scored/selected samples) of full SVP
# and of no_scoring with training seeds 1 and 2, evaluate each on the same test split, and write
# benchmarks/results/svp_shapes/seed_study.json.
#   bash benchmarks/probes/svp_seed_study.sh [base run, default svp_shapes_seed0]
# Result: benchmarks/results/svp_shapes/seed_study_384img_top025.json, its one run, on the recipe
# of commit a3cc2a9 (384 images, top 0.25): CHAIR_i spread 0.013 (SVP) and 0.032 (no_scoring)
# over training seeds 0-2 (docs/results/svp.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
py=.venv/bin/python
base=${1:-svp_shapes_seed0}
if [[ "${COLLECT_ONLY:-0}" != 1 ]]; then
  for src in $base ${base}__no_scoring; do
    for seed in 1 2; do
      dst=seedstudy_${src}_$seed
      rm -rf runs/$dst; mkdir -p runs/$dst/iter_1
      cp runs/$src/base_metrics.json runs/$dst/
      cp runs/$src/iter_1/{scored,selected}.parquet runs/$src/iter_1/sample_quality.json runs/$dst/iter_1/
      $py -c "import json; s = json.load(open('runs/$src/state.json')); s['done'] = {k: v for k, v in s['done'].items() if k in ('eval_base', 'iter_1/sample_score_select')}; json.dump(s, open('runs/$dst/state.json', 'w'))"
      abl=none; [[ $src == *no_scoring ]] && abl=no_scoring
      $py pipelines/svp.py --config configs/svp_shapes.yaml run.name=$dst run.seed=$seed svp.ablation=$abl
    done
  done
fi
$py - "$base" <<'PY'
import json, statistics, sys
base = sys.argv[1]
out = {}
for name, src in (("svp", base), ("no_scoring", base + "__no_scoring")):
    runs = [f"runs/{src}"] + [f"runs/seedstudy_{src}_{s}" for s in (1, 2)]
    ms = [json.load(open(f"{r}/iter_1/metrics.json")) for r in runs]
    out[name] = {"training_seeds": [0, 1, 2], "chair_i": [m["chair_i"] for m in ms], "recall": [m["recall"] for m in ms],
                 "chair_i_mean": statistics.mean(m["chair_i"] for m in ms),
                 "recall_mean": statistics.mean(m["recall"] for m in ms)}
out["base"] = json.load(open(f"runs/{base}/base_metrics.json"))
json.dump(out, open("benchmarks/results/svp_shapes/seed_study.json", "w"), indent=1)
print(json.dumps({k: (v.get("chair_i_mean"), v.get("recall_mean")) for k, v in out.items() if k != "base"}))
PY
