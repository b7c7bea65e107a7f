import math

import pytest
import torch

from groundloop.svp.scoring import delta_score, s_score, top_fraction


def test_scores_on_a_hand_computed_case():
    # one caption, two positions, vocabulary of two; the second position is padding
    q = torch.tensor([[[0.75, 0.25], [0.5, 0.5]]])
    p = torch.tensor([[[0.5, 0.5], [0.9, 0.1]]])
    mask = torch.tensor([[1.0, 0.0]])
    s = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    d = (0.75 * math.log(0.75) + 0.25 * math.log(0.25)) - 2 * 0.5 * math.log(0.5)
    torch.testing.assert_close(s_score(q.log(), p.log(), mask), torch.tensor([s]))
    torch.testing.assert_close(delta_score(q.log(), p.log(), mask), torch.tensor([d]))


def test_identical_distributions_score_zero():
    lp = torch.randn(3, 5, 7).log_softmax(-1)
    m = torch.ones(3, 5)
    torch.testing.assert_close(s_score(lp, lp, m), torch.zeros(3))
    torch.testing.assert_close(delta_score(lp, lp, m), torch.zeros(3))


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_scores_match_a_naive_loop(seed):
    g = torch.Generator().manual_seed(seed)
    B, T, V = 3, 6, 11
    lq = torch.randn(B, T, V, generator=g, dtype=torch.float64).log_softmax(-1)
    lp = torch.randn(B, T, V, generator=g, dtype=torch.float64).log_softmax(-1)
    mask = (torch.rand(B, T, generator=g) > 0.3).double()
    s_naive, d_naive = torch.zeros(B, dtype=torch.float64), torch.zeros(B, dtype=torch.float64)
    for b in range(B):
        for t in range(T):
            if mask[b, t]:
                for v in range(V):
                    qv, pv = lq[b, t, v].exp(), lp[b, t, v].exp()
                    s_naive[b] += qv * (math.log(qv) - math.log(pv))
                    d_naive[b] += qv * math.log(qv) - pv * math.log(pv)
    torch.testing.assert_close(s_score(lq, lp, mask), s_naive)
    torch.testing.assert_close(delta_score(lq, lp, mask), d_naive)
    assert (s_score(lq, lp, mask) >= -1e-12).all()  # S is a sum of KL divergences


def test_top_fraction_is_per_image():
    scores = [0.1, 0.9, 0.5, 0.3, 5.0, -1.0, 2.0, 0.0, 1.0, 0.7]
    groups = ["a"] * 5 + ["b"] * 5
    keep = top_fraction(scores, groups, 0.4)
    assert [i for i, k in enumerate(keep) if k] == [1, 4, 6, 8]
    assert sum(top_fraction(scores, groups, 0.01)) == 2  # at least one per image
    with pytest.raises(ValueError):
        top_fraction(scores, groups, 0.0)
