"""Best-of-N by pairwise judging: a knockout tournament or a round robin among N responses,
given a judge that says how likely each response of a pair is the better one (VL-GenRM's
verdict probability, `groundloop.genrm.judge.GenRM.prefer`, or any scripted judge)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

Judge = Callable[[Sequence[tuple[int, int]]], Sequence[float]]
"""Given (i, j) index pairs, P(response i is better than response j) for each pair."""


def knockouts(groups: Sequence[Sequence[int]], judge: Judge) -> list[int]:
    """The winner of a single-elimination tournament within each group of response indices
    (len - 1 comparisons per group; an odd one out gets a bye). Each round of every group is
    judged in one call, so many tournaments batch together."""
    if any(not g for g in groups):
        raise ValueError("a knockout needs at least one response")
    alive = [list(g) for g in groups]
    while any(len(a) > 1 for a in alive):
        pairs = [(a[k], a[k + 1]) for a in alive for k in range(0, len(a) - 1, 2)]
        wins = iter(i if p >= 0.5 else j for (i, j), p in zip(pairs, judge(pairs)))
        alive = [[next(wins) for _ in range(len(a) // 2)] + ([a[-1]] if len(a) % 2 else []) for a in alive]
    return [a[0] for a in alive]


def knockout(n: int, judge: Judge, rng: random.Random | None = None) -> int:
    """The knockout winner among n responses, in a random bracket when rng is given."""
    order = list(range(n))
    if rng is not None:
        rng.shuffle(order)
    return knockouts([order], judge)[0]


def pairwise_scores(n: int, judge: Judge) -> list[float]:
    """Each response's summed win probability over all n(n-1)/2 pairs (round robin): a score
    to rank responses by, as S(q,p) or a value would."""
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    wins = [0.0] * n
    for (i, j), p in zip(pairs, judge(pairs)):
        wins[i] += p
        wins[j] += 1 - p
    return wins


def round_robin(n: int, judge: Judge) -> int:
    """The response with the highest round-robin score."""
    if n <= 0:
        raise ValueError("round robin needs at least one response")
    wins = pairwise_scores(n, judge)
    return max(range(n), key=lambda i: wins[i])
