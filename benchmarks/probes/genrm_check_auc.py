"""Does a reward model's claim check carry information? For ShapesWorld-RewardBench pairs,
teacher-force the scaffolded critique with the expert's true checks and read, at every claim
slot, the margin logit("no") - logit("yes"); report the AUC with which that margin ranks the
false claims above the true ones (0.5: the check ignores the image).

Results: benchmarks/results/genrm/check_auc_ga2.json, check_auc_pb_checks.json and
check_auc_probe_base.json (docs/history/2026-12-02-genrm-grounded-attention-scaffold-21ee26b.md).

    python benchmarks/probes/genrm_check_auc.py --reward-model runs/genrm_ga/round0/adapter \\
        --bench runs/genrm_ga2/round0/bench.parquet --n 40 --out benchmarks/results/genrm/check_auc_ga.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import torch

from groundloop.data.coco import load_image
from groundloop.genrm import critique, experts
from groundloop.genrm import judge as genrm
from groundloop.models import load_detector, load_reward_model
from groundloop.vocab.shapes import ShapesVocabulary

SHAPES = ShapesVocabulary()


def auc(pos: list[float], neg: list[float]) -> float:
    return sum((a > b) + 0.5 * (a == b) for a in pos for b in neg) / max(1, len(pos) * len(neg))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reward-model", required=True)
    p.add_argument("--bench", type=Path, required=True, help="a bench.parquet (pairs: path, question, a, b, category)")
    p.add_argument("--category", default="hallucination")
    p.add_argument("--n", type=int, default=40, help="pairs")
    p.add_argument("--detector", default="shapesworld/detector")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    judge = load_reward_model(a.reward_model, critique="scaffold")
    tok = judge.processor.tokenizer
    det = load_detector(a.detector)
    pairs = pd.read_parquet(a.bench)
    pairs = pairs[pairs["category"] == a.category].head(a.n)
    false_m, true_m = [], []
    for r in pairs.itertuples():
        image = load_image(r.path)
        ca, cb = SHAPES.claims(r.a), SHAPES.claims(r.b)
        found = det.detect([image], [experts.expert_queries(ca + cb, SHAPES)])[0]
        truth = experts.check_claims(ca, found) + experts.check_claims(cb, found)
        claims = [[c.text for c in ca], [c.text for c in cb]]
        prompt = genrm._prompt_row(judge.processor, image, critique.judge_prompt(r.question, r.a, r.b))
        written = [
            tok(critique.critique_so_far(claims, truth[:k]), add_special_tokens=False)["input_ids"] + judge.check_prefix
            for k in range(len(truth))
        ]
        with torch.no_grad():
            logits = judge.next_logits([prompt] * len(written), written)[:, judge.check_ids]
        for (yes, no), t in zip(logits.tolist(), truth):
            (true_m if t else false_m).append(no - yes)
    report = {
        "reward_model": a.reward_model,
        "category": a.category,
        "pairs": len(pairs),
        "false_claims": len(false_m),
        "true_claims": len(true_m),
        "check_auc": auc(false_m, true_m),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
