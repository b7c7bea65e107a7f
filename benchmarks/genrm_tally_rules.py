"""What a factored critique's tally decides, before the verdict model: bench accuracy and
Best-of-N CHAIR of the tally alone, at every check threshold, for a few tally rules.

The factored judge checks every claim with its checker (`GenRM.check_margins`), writes the
tally where the two responses differ (`critique.differing`), and its verdict follows that tally on
~98 % of pairs (`claim_checks_*.json`). So the tally alone, replayed here at each threshold of
a grid without re-running the model, shows what a threshold or a rule trades: ShapesWorld-
RewardBench accuracy per category (a tie counts a half) against Best-of-N `chair_i` (a
knockout in the same random brackets as `genrm_best_of_n.py`, a tie going to the first of the
two), as the change from the mean random pick among the same N captions.

Rules: `refuted_then_confirmed` (the recipe's `critique.tally_prefers`), `refuted` (fewer refuted
only); each on all claims or on object claims only (`objects`: counts left out of the tally).

Use a bench built from images that are not the ones a model is reported on when choosing
anything with it (e.g. `generate --split val --n 200 --seed 5`).

    python benchmarks/genrm_tally_rules.py --reward-model shapesworld/genrm --data data/shapes/val5 \
        --out benchmarks/results/genrm/tally_rules/shipped_val5.json
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from groundloop import prompts
from groundloop import vocab as vocab_lib
from groundloop.data.coco import load_dataset
from groundloop.eval import captioning, metrics
from groundloop.genrm import (
    best_of_n,
    critique,
)
from groundloop.models import load_reward_model, load_vlm
from groundloop.sampling import HFSampler
from groundloop.vocab.shapes import ShapesVocabulary
from groundloop.worlds import reward_bench as rb
from pipelines.evaluate.rm import shapes_bench

SHAPES = ShapesVocabulary()

Rule = Callable[[Sequence[str], Sequence[bool], Sequence[str], Sequence[bool]], "str | None"]


def refuted_only(ca: Sequence[str], ka: Sequence[bool], cb: Sequence[str], kb: Sequence[bool]) -> str | None:
    (ra, _), (rb_, _) = critique.differing(ca, ka, cb, kb)
    return None if ra == rb_ else critique.LABELS[int(rb_ < ra)]


RULES: dict[str, Rule] = {"refuted_then_confirmed": critique.tally_prefers, "refuted": refuted_only}


def claim_texts(response: str, objects_only: bool) -> list[str]:
    return [c.text for c in SHAPES.claims(response) if not (objects_only and c.count is not None)]


def replay(
    rule_name: str,
    objects_only: bool,
    tau: float,
    margins: dict,
    rows: Sequence[dict],
    caps: Sequence[str],
    owner: Sequence[int],
    brackets: Sequence[Sequence[int]],
    counts: torch.Tensor,
    random_chair: float,
) -> dict:
    """One rule at one threshold: its bench accuracy and its Best-of-N knockout's chair_i."""
    rule = RULES[rule_name]

    def verdict(kind: str, o: int, x: str, y: str) -> str | None:
        cx, cy = claim_texts(x, objects_only), claim_texts(y, objects_only)
        return rule(cx, [margins[kind, o, c] >= tau for c in cx], cy, [margins[kind, o, c] >= tau for c in cy])

    correct = []
    for i, r in enumerate(rows):
        v = verdict("bench", i, r["a"], r["b"])
        correct.append(0.5 if v is None else float(v == r["label"]))

    def judge_pairs(pairs: Sequence[tuple[int, int]]) -> list[float]:
        return [{"A": 1.0, "B": 0.0, None: 0.5}[verdict("bon", owner[i], caps[i], caps[j])] for i, j in pairs]

    chosen = counts.view(-1, 2)[best_of_n.knockouts(brackets, judge_pairs)]
    chair_i = (chosen[:, 0].sum() / chosen[:, 1].sum()).item()
    return {
        "rule": rule_name,
        "claims": "objects" if objects_only else "all",
        "threshold": tau,
        "bench": rb.accuracy([r["category"] for r in rows], correct),
        "bon_chair_i": chair_i,
        "bon_change_vs_random": (chair_i - random_chair) / random_chair,
    }


def real_judge(judge, images, caps, owner, brackets, counts, random_chair, margins) -> dict:
    """The model's own knockout (verdict log-probabilities after its factored critique) in the
    given brackets, with how its verdicts relate to its critique's tally (`critique.tally_prefers` at
    the model's threshold): agreement where the tally decides, and on tallies that tie, how
    often it picks the response with more claims."""
    seen: list[tuple[int, int, float]] = []

    def judge_pairs(pairs: Sequence[tuple[int, int]]) -> list[float]:
        out = []
        for s in range(0, len(pairs), 48):
            chunk = pairs[s : s + 48]
            out += judge.prefer(
                [images[owner[i]] for i, _ in chunk],
                [prompts.BASE_PROMPT] * len(chunk),
                [caps[i] for i, _ in chunk],
                [caps[j] for _, j in chunk],
            )
        seen.extend((i, j, q) for (i, j), q in zip(pairs, out))
        return out

    t = time.time()
    picked = best_of_n.knockouts(brackets, judge_pairs)
    chosen = counts.view(-1, 2)[picked]
    chair_i = (chosen[:, 0].sum() / chosen[:, 1].sum()).item()
    follows, tie_longer, decided, ties, unequal = 0, 0, 0, 0, 0
    by_kind: dict[str, list[int]] = {}
    for i, j, q in seen:
        ca, cb = claim_texts(caps[i], False), claim_texts(caps[j], False)
        tau = judge.check_threshold
        v = critique.tally_prefers(
            ca, [margins["bon", owner[i], c] >= tau for c in ca], cb, [margins["bon", owner[j], c] >= tau for c in cb]
        )
        if v is None:
            ties += 1
            if len(ca) != len(cb):
                unequal += 1
                tie_longer += (q >= 0.5) == (len(ca) > len(cb))
        else:
            decided += 1
            follows += (q >= 0.5) == (v == "A")
            (ra, _), (rb_, _) = critique.differing(
                ca,
                [margins["bon", owner[i], c] >= tau for c in ca],
                cb,
                [margins["bon", owner[j], c] >= tau for c in cb],
            )
            by = by_kind.setdefault("by refuted" if ra != rb_ else "by confirmed (refuted tie)", [0, 0])
            by[0] += 1
            by[1] += (q >= 0.5) == (v == "A")
    return {
        "bon_chair_i": chair_i,
        "bon_change_vs_random": (chair_i - random_chair) / random_chair,
        "judged_pairs": len(seen),
        "tally_decides": decided,
        "verdict_follows_tally": follows / max(1, decided),
        "follows_by_kind": {k: {"pairs": n, "follows": f / n} for k, (n, f) in by_kind.items()},
        "tally_ties": ties,
        "ties_of_unequal_length": unequal,
        "on_those_picks_more_claims": tie_longer / max(1, unequal),
        "seconds": time.time() - t,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reward-model", required=True)
    p.add_argument("--vlm", default="shapesworld/vlm", help="the policy whose N captions are picked from")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--n-images", type=int, default=100, help="Best-of-N images")
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--per-category", type=int, default=100)
    p.add_argument("--temperature", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grid", type=float, nargs=3, default=(-3.0, 3.0, 0.25), metavar=("LO", "HI", "STEP"))
    p.add_argument(
        "--judge",
        action="store_true",
        help="also run the real judge's knockout in the same brackets (its verdicts, not the tally's) and "
        "report how often its verdict follows its own critique's tally",
    )
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    t0 = time.time()
    judge = load_reward_model(a.reward_model, critique="factored")
    # the bench: (image, a, b, label, category)
    rows, bench_images, _ = shapes_bench(a.data, a.per_category, a.seed)
    # Best-of-N: n captions per image, as genrm_best_of_n.py samples them
    ok, _ = captioning.load_images(load_dataset(a.data.resolve())[: a.n_images])
    records, images = [r for r, _ in ok], [im for _, im in ok]
    vocab = vocab_lib.for_records(records)
    truths = [vocab.truth_labels(r) for r in records]
    sampler = HFSampler(*load_vlm(a.vlm), max_new_tokens=128, seed=a.seed)
    caps: list[str] = []
    for i in range(0, len(images), 8):
        for cs in sampler.generate(
            images[i : i + 8],
            [prompts.BASE_PROMPT] * len(images[i : i + 8]),
            n=a.n,
            temperature=a.temperature,
            top_p=0.95,
        ):
            caps += cs
    owner = [b for b in range(len(images)) for _ in range(a.n)]
    counts = torch.tensor(
        [
            [len(h), len(m)]
            for h, m in zip(
                metrics.chair_per_caption(caps, [truths[o] for o in owner], vocab), [vocab.mentions(c) for c in caps]
            )
        ],
        dtype=torch.float64,
    ).view(len(images), a.n, 2)
    draws = torch.randint(0, a.n, (2000, len(images)), generator=torch.Generator().manual_seed(a.seed))
    drawn = counts[torch.arange(len(images)), draws]
    random_chair = (drawn[..., 0].sum(1) / drawn[..., 1].sum(1)).mean().item()

    # every distinct (image, claim) margin, once
    asked: dict[tuple[str, int, str], float] = {}
    for kind, texts in (("bench", [t for r in rows for t in (r["a"], r["b"])]), ("bon", caps)):
        owners = [i // 2 for i in range(len(texts))] if kind == "bench" else owner
        for o, t in zip(owners, texts):
            for c in claim_texts(t, False):
                asked.setdefault((kind, o, c), 0.0)
    keys = list(asked)
    margins = judge.check_margins(
        [(bench_images if k == "bench" else images)[o] for k, o, _ in keys], [c for _, _, c in keys]
    )
    asked = dict(zip(keys, margins))
    rng = random.Random(a.seed)
    brackets = []
    for b in range(len(images)):
        g = list(range(b * a.n, (b + 1) * a.n))
        rng.shuffle(g)
        brackets.append(g)

    lo, hi, step = a.grid
    grid = [round(lo + i * step, 4) for i in range(int(round((hi - lo) / step)) + 1)]
    results = [
        replay(rule_name, objects_only, tau, asked, rows, caps, owner, brackets, counts, random_chair)
        for rule_name in RULES
        for objects_only in (False, True)
        for tau in grid
    ]
    real = real_judge(judge, images, caps, owner, brackets, counts, random_chair, asked) if a.judge else None
    report = {
        "settings": vars(a) | {"data": str(a.data), "out": str(a.out)},
        "model_threshold": judge.check_threshold,
        "bench_pairs": len(rows),
        "bon_images": len(images),
        "random_chair_i": random_chair,
        "distinct_claims": len(keys),
        "seconds": time.time() - t0,
        "real_judge": real,
        "results": results,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1))
    if real:
        print("real judge", json.dumps(real))
    for r in results:
        if abs(r["threshold"] - judge.check_threshold) < 1e-9 or r["threshold"] in (-1.5, 0.0, 0.75, 1.5):
            print(
                r["rule"],
                r["claims"],
                r["threshold"],
                {k: round(v, 3) for k, v in r["bench"].items()},
                round(r["bon_change_vs_random"], 3),
            )


if __name__ == "__main__":
    main()
