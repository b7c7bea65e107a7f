"""Best-of-N by pairwise judging (`groundloop.genrm.best_of_n`) on scripted judges."""

import random

import pytest

from groundloop.genrm import best_of_n as bon


def scripted_judge(quality: list[float]):
    calls: list[tuple[int, int]] = []

    def judge(pairs):
        calls.extend(pairs)
        return [1.0 if quality[i] > quality[j] else 0.0 for i, j in pairs]

    return judge, calls


@pytest.mark.parametrize("n", [1, 2, 5, 16])
def test_best_of_n_finds_the_best_under_a_consistent_judge(n):
    rng = random.Random(n)
    quality = [rng.random() for _ in range(n)]
    best = max(range(n), key=quality.__getitem__)
    judge, calls = scripted_judge(quality)
    assert bon.knockout(n, judge, random.Random(0)) == best
    assert len(calls) == n - 1  # a knockout makes n - 1 comparisons
    judge, calls = scripted_judge(quality)
    assert bon.round_robin(n, judge) == best
    assert len(calls) == n * (n - 1) // 2


def test_knockouts_run_many_tournaments_in_batched_rounds():
    quality = [0.1, 0.9, 0.5, 0.3, 0.7, 0.2, 0.8]
    calls = []

    def judge(pairs):
        calls.append(len(pairs))
        return [1.0 if quality[i] > quality[j] else 0.0 for i, j in pairs]

    # groups of 4, 2 and 1 responses: winners 1, 4 and 6; rounds judged in 2 calls
    assert bon.knockouts([[0, 1, 2, 3], [4, 5], [6]], judge) == [1, 4, 6]
    assert calls == [3, 1]
    with pytest.raises(ValueError):
        bon.knockouts([[]], judge)
