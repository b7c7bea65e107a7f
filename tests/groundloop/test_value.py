"""ViMaR's reward, calibration and TD(0) targets on hand-computed cases."""

import torch
from torch.testing import assert_close

from groundloop.value import calibrate, margin_reward, split_sentences, td_loss, td_targets, transitions


def test_margin_reward_keeps_delta_above_tau_and_penalises_the_shortfall_below():
    delta = torch.tensor([0.30, 0.16, 0.10, -0.04])
    # tau 0.16: 0.30 and 0.16 pass unchanged; 0.10 -> -2*(0.06); -0.04 -> -2*(0.20)
    assert_close(margin_reward(delta, tau=0.16, alpha=2.0), torch.tensor([0.30, 0.16, -0.12, -0.40]))
    assert_close(margin_reward(delta, tau=0.16), torch.tensor([0.30, 0.16, -0.06, -0.20]))


def test_calibrate_is_the_percentile_of_the_scores():
    assert calibrate([0.0, 0.1, 0.2, 0.3, 0.4], 25) == 0.1
    assert abs(calibrate(list(range(101)), 17) - 17.0) < 1e-9


def test_td_targets_bootstrap_except_at_the_terminal_sentence():
    r = torch.tensor([0.2, -0.1, 0.5])
    v_next = torch.tensor([1.0, 2.0, 9.0])
    terminal = torch.tensor([False, False, True])
    assert_close(td_targets(r, v_next, terminal, gamma=0.9), torch.tensor([0.2 + 0.9, -0.1 + 1.8, 0.5]))


def test_td_loss_is_semi_gradient():
    v = torch.tensor([0.0, 1.0], requires_grad=True)
    v_next = torch.tensor([1.0, 0.0], requires_grad=True)
    loss = td_loss(v, v_next, torch.tensor([1.0, 0.0]), torch.tensor([False, True]), gamma=0.5)
    # targets: 1 + 0.5*1 = 1.5 and 0 (terminal) -> ((0-1.5)^2 + (1-0)^2) / 2
    assert_close(loss, torch.tensor((2.25 + 1.0) / 2))
    loss.backward()
    assert v_next.grad is None or torch.all(v_next.grad == 0)
    assert_close(v.grad, torch.tensor([-1.5, 1.0]))


def test_transitions_chain_consecutive_sentences_and_end_terminal():
    caps = [split_sentences("In the image, one circle. A red circle is at the top."), ["Only."]]
    rows = transitions(caps, [[0.1, 0.2], [0.3]])
    assert rows == [(0, "In the image, one circle.", "A red circle is at the top.", 0.1, False),
                    (0, "A red circle is at the top.", "", 0.2, True),
                    (1, "Only.", "", 0.3, True)]
