"""Pairwise preference benchmarks (ShapesWorld-RewardBench, VL-RewardBench): judging rows with
the chosen response placed at random, and accuracy per category."""

from __future__ import annotations

import random
from collections.abc import Sequence


def accuracy(categories: Sequence[str], correct: Sequence[bool]) -> dict[str, float]:
    """Accuracy per category and overall (the mean over pairs)."""
    res: dict[str, float] = {}
    for cat in sorted(set(categories)):
        hits = [c for k, c in zip(categories, correct) if k == cat]
        res[cat] = sum(hits) / len(hits)
    res["overall"] = sum(correct) / len(correct) if correct else 0.0
    return res


def judge_rows(pairs: Sequence[tuple[str, ...]], seed: int) -> list[dict[str, str]]:
    """(id, category, chosen, rejected[, form]) pairs as judging rows: the chosen response is
    A or B at random (seeded), `label` says which; `form` is "category/form" or ""."""
    rng = random.Random(seed)
    rows = []
    for pid, cat, chosen, rejected, *form in pairs:
        a_first = rng.random() < 0.5
        rows.append(
            {
                "id": pid,
                "category": cat,
                "a": chosen if a_first else rejected,
                "b": rejected if a_first else chosen,
                "label": "A" if a_first else "B",
                "form": f"{cat}/{form[0]}" if form and form[0] else "",
            }
        )
    return rows
