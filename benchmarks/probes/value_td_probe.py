"""How fast does TD(0) teach the value head to read a sentence against the image?

Trains a value model (shipped VLM + head) with semi-gradient TD(0) on a train_value run's
transitions (`transitions.parquet`) and reads, every `--every` steps, the within-image AUC
on clean held-out pairs (`value_head_probe.pairs`: a test image's ground-truth object
sentence vs the same sentence with an absent colour+shape). `--paired` fills each batch with
counterfactual steps next to the steps they were swapped from (same image, same next
state), so the batch's gradient carries the reward difference with less noise.

Results: benchmarks/results/vimar/value_td_probe.log, value_td_probe_head100.json
(docs/history/2026-12-01-vimar-value-model-before-reward-head-99aea52.md) and
value_td_probe_reward_head.json (docs/results/vimar.md).

    python -m benchmarks.probes.value_td_probe --run runs/value_cf1 --variants plain paired --steps 600 \
        --out benchmarks/results/vimar/value_td_probe.json
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks.probes.value_head_probe import pairs
from benchmarks.value_discrimination import within_image_auc
from groundloop.models import load_vlm
from groundloop.vimar.value import ValueModel, optimizer, td_batch_loss
from pipelines.common.training import Images


def batches(td: pd.DataFrame, paired: bool, size: int, rng: random.Random):
    """Endless batches of transition rows: shuffled, or counterfactual + original pairs."""
    if not paired:
        order = list(range(len(td)))
        while True:
            rng.shuffle(order)
            for i in range(0, len(order) - size + 1, size):
                yield td.iloc[order[i : i + size]]
    own = td[td["source"] != "counterfactual"].reset_index(drop=True)
    cf = td[td["source"] == "counterfactual"].reset_index(drop=True)
    key = {k: i for i, k in enumerate(zip(own["path"], own["next_state"], own["terminal"]))}
    match = [key.get(k) for k in zip(cf["path"], cf["next_state"], cf["terminal"])]
    ok = [i for i, j in enumerate(match) if j is not None]
    while True:
        rng.shuffle(ok)
        for i in range(0, len(ok) - size // 2 + 1, size // 2):
            c = ok[i : i + size // 2]
            yield pd.concat([cf.iloc[c], own.iloc[[match[j] for j in c]]])


def run(variant: str, td: pd.DataFrame, test, a) -> list[dict]:
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    model = ValueModel(
        *load_vlm(a.vlm), meta={"pool": a.pool, "match_keys": a.match_keys, "reward_head": a.reward_weight > 0}
    )
    model.train()
    opt = optimizer(model, a.lr, a.head_lr_mult)
    im = Images()

    y = np.array([t[2] for t in test]) > 0
    image = np.array([t[3] for t in test])
    curve, t0 = [], time.time()
    for step, b in enumerate(batches(td, variant == "paired", a.batch_size, rng), 1):
        loss = td_batch_loss(
            model,
            [im(p) for p in b["path"]],
            b["state"].tolist(),
            b["next_state"].tolist(),
            b["reward"].tolist(),
            b["terminal"].tolist(),
            0.9,
            a.reward_weight,
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % a.every == 0:
            v = np.array(model.values([im(p) for p, *_ in test], [s for _, s, *_ in test]))
            curve.append(
                {
                    "step": step,
                    "td_loss": loss.item(),
                    "test_within_image_auc": within_image_auc(v, y, image),
                    "s": round(time.time() - t0, 1),
                }
            )
            print(variant, json.dumps(curve[-1]), flush=True)
        if step >= a.steps:
            return curve
    return curve


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="a train_value run folder (transitions.parquet)")
    p.add_argument("--vlm", default="shapesworld/vlm")
    p.add_argument("--test", default="data/shapes/test")
    p.add_argument("--variants", nargs="+", default=["plain", "paired"], choices=["plain", "paired"])
    p.add_argument("--pool", default="match")
    p.add_argument("--match-keys", default="input")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--every", type=int, default=200)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--head-lr-mult", type=float, default=10.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--reward-weight",
        type=float,
        default=0.0,
        help="> 0: V = R + C with a reward head R that also regresses the step's reward",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    torch.set_num_threads(2)
    td = pd.read_parquet(a.run / "transitions.parquet")
    test = pairs(a.test, 60, random.Random(a.seed))
    res = {
        "settings": {k: str(v) for k, v in vars(a).items()},
        "n_transitions": len(td),
        "n_test": len(test),
        "curves": {v: run(v, td, test, a) for v in a.variants},
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
