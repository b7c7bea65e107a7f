"""Best-of-N with VL-GenRM against a random pick among the same N captions.

For each image: N captions sampled from the VLM; the reward model picks one by a knockout
tournament (N - 1 critiques); CHAIR of the picks is compared, side by side, with a seeded
random pick among the same N, the mean over all N (the random pick's expectation) and the
oracle pick (fewest hallucinated objects by the annotations).

    python benchmarks/genrm_best_of_n.py --reward-model runs/genrm_shapes/round2/adapter \
        --data data/shapes/test --n-images 100 --n 16 --out benchmarks/results/genrm/best_of_16.json
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from groundloop import prompts
from groundloop import vocab as vocab_lib
from groundloop.data.coco import load_dataset
from groundloop.eval import captioning, metrics
from groundloop.genrm import best_of_n
from groundloop.models import load_reward_model, load_vlm
from groundloop.sampling import HFSampler


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reward-model", required=True)
    p.add_argument("--vlm", default="shapesworld/vlm")
    p.add_argument("--data", type=Path, default=Path("data/shapes/test"))
    p.add_argument("--n-images", type=int, default=100)
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--temperature", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--judge-batch", type=int, default=48)
    p.add_argument("--random-draws", type=int, default=2000, help="random picks to compare against")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    ok, _ = captioning.load_images(load_dataset(a.data.resolve())[: a.n_images])
    records, images = [r for r, _ in ok], [im for _, im in ok]
    vocab = vocab_lib.for_records(records)
    truths = [vocab.truth_labels(r) for r in records]
    sampler = HFSampler(*load_vlm(a.vlm), max_new_tokens=128, seed=a.seed)
    t = time.time()
    caps: list[list[str]] = []
    for i in range(0, len(images), 8):
        caps += sampler.generate(
            images[i : i + 8],
            [prompts.BASE_PROMPT] * len(images[i : i + 8]),
            n=a.n,
            temperature=a.temperature,
            top_p=0.95,
        )
    sample_s = time.time() - t
    flat = [c for cs in caps for c in cs]
    owner = [b for b in range(len(images)) for _ in range(a.n)]
    judge_model = load_reward_model(a.reward_model)

    def judge(pairs):
        out: list[float] = []
        for s in range(0, len(pairs), a.judge_batch):
            chunk = pairs[s : s + a.judge_batch]
            out += judge_model.prefer(
                [images[owner[i]] for i, _ in chunk],
                [prompts.BASE_PROMPT] * len(chunk),
                [flat[i] for i, _ in chunk],
                [flat[j] for _, j in chunk],
            )
        return out

    t = time.time()
    rng = random.Random(a.seed)
    groups = []
    for b in range(len(images)):
        g = list(range(b * a.n, (b + 1) * a.n))
        rng.shuffle(g)  # a random bracket
        groups.append(g)
    picked = best_of_n.knockouts(groups, judge)
    judge_s = time.time() - t
    halluc = metrics.chair_per_caption(flat, [truths[o] for o in owner], vocab)
    oracle = [min(range(b * a.n, (b + 1) * a.n), key=lambda i: len(halluc[i])) for b in range(len(images))]
    random_pick = [b * a.n + rng.randrange(a.n) for b in range(len(images))]

    def chair_of(idx):
        return metrics.chair([flat[i] for i in idx], [truths[owner[i]] for i in idx], vocab)

    res = {
        "genrm": chair_of(picked),
        "random": chair_of(random_pick),
        "all_n": metrics.chair(flat, [truths[o] for o in owner], vocab),
        "oracle": chair_of(oracle),
    }
    base = res["random"]["chair_i"]
    # one seeded random pick is a noisy baseline: also the distribution over many random picks
    counts = torch.tensor(
        [
            [c["n_hallucinated"], c["n_mentions"]]
            for c in (metrics.chair([f], [truths[o]], vocab) for f, o in zip(flat, owner))
        ],
        dtype=torch.float64,
    ).view(len(images), a.n, 2)
    draws = torch.randint(0, a.n, (a.random_draws, len(images)), generator=torch.Generator().manual_seed(a.seed))
    picked_counts = counts[torch.arange(len(images)), draws]  # (draws, images, 2)
    draw_chair = picked_counts[..., 0].sum(1) / picked_counts[..., 1].sum(1)
    change = (res["genrm"]["chair_i"] - draw_chair) / draw_chair
    random_draws = {
        "n": a.random_draws,
        "chair_i_mean": draw_chair.mean().item(),
        "chair_i_p05": draw_chair.quantile(0.05).item(),
        "chair_i_p95": draw_chair.quantile(0.95).item(),
        "change_vs_mean": (res["genrm"]["chair_i"] - draw_chair.mean().item()) / draw_chair.mean().item(),
        "share_of_draws_beaten_by_30pct": (change <= -0.30).double().mean().item(),
    }
    report = {
        "settings": vars(a) | {"data": str(a.data), "out": str(a.out)},
        "n_images": len(images),
        "results": res,
        "random_draws": random_draws,
        "chair_i_change_vs_random": (res["genrm"]["chair_i"] - base) / base if base else None,
        "chair_i_change_vs_all_n": (res["genrm"]["chair_i"] - res["all_n"]["chair_i"]) / res["all_n"]["chair_i"],
        "sample_s": sample_s,
        "judge_s": judge_s,
        "judged_pairs": len(flat) - len(images),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1))
    print(
        json.dumps(
            {k: {m: v[m] for m in ("chair_i", "recall")} for k, v in res.items()}
            | {"change_vs_random": report["chair_i_change_vs_random"], "random_draws": random_draws}
        )
    )


if __name__ == "__main__":
    main()
