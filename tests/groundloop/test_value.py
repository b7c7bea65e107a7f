"""ViMaR's reward, calibration and TD(0) targets on hand-computed cases."""

import random

import pytest
import torch
from torch.testing import assert_close

from groundloop.vimar.value import (
    MatchHead,
    calibrate,
    counterfactual,
    counterfactual_transitions,
    margin_reward,
    split_sentences,
    td_loss,
    td_targets,
    transitions,
)


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
    assert rows == [
        (0, "In the image, one circle.", "A red circle is at the top.", 0.1, False),
        (0, "A red circle is at the top.", "", 0.2, True),
        (1, "Only.", "", 0.3, True),
    ]


COLOURS, SHAPES = ["red", "blue", "green"], ["circle", "square"]


def test_counterfactual_swaps_one_whole_word_within_its_group():
    rng = random.Random(0)
    seen = set()
    for _ in range(50):
        out = counterfactual("A small red circle is at the left.", [COLOURS, SHAPES], rng)
        a, b = "A small red circle is at the left.".split(), out.split()
        changed = [(x, y) for x, y in zip(a, b) if x != y]
        assert len(a) == len(b) and len(changed) == 1
        old, new = changed[0]
        assert (old, new in COLOURS) == ("red", True) or (old, new in SHAPES) == ("circle", True)
        seen.add(new)
    assert seen == {"blue", "green", "square"}  # every alternative of both groups turns up
    assert counterfactual("There are two circles.", [COLOURS, SHAPES], rng) is None  # "circles" is not "circle"
    assert counterfactual("A red circle.", [["red"]], rng) is None  # a one-word group has no alternative


def test_counterfactual_transitions_follow_the_swap_with_the_policys_own_next_sentence():
    sents = [["S0.", "S1.", "S2."]]
    rows = counterfactual_transitions(sents, [["X0.", None, "X2."]], [[-0.2, None, 0.1]])
    assert rows == [(0, "X0.", "S1.", -0.2, False), (0, "X2.", "", 0.1, True)]
    with pytest.raises(ValueError, match="caption 0"):
        counterfactual_transitions(sents, [["X0."]], [[0.1]])


def test_match_head_scores_how_well_the_sentence_tokens_find_an_image_token():
    head = MatchHead(hidden=3, dim=3)
    with torch.no_grad():
        for lin in (head.query, head.key):
            lin.weight.copy_(torch.eye(3))
            lin.bias.zero_()
        head.weight.weight.zero_()  # uniform weights over the sentence's tokens
        head.weight.bias.zero_()
        head.scale.fill_(1.0)
        head.out.weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 1.0]]))
    e = torch.eye(3)
    # tokens: [image e0, image e1, sentence, sentence]; row 0's sentence repeats e0 and e1,
    # row 1's says e2 (in no image token) and e0
    h = torch.stack([torch.stack([e[0], e[1], e[0], e[1]]), torch.stack([e[0], e[1], e[2], e[0]])])
    image = torch.tensor([[1, 1, 0, 0]] * 2)
    sentence = torch.tensor([[0, 0, 1, 1]] * 2)
    # mean over sentence tokens of the best cosine: row 0 (1 + 1) / 2, row 1 (0 + 1) / 2
    assert_close(head(h, sentence, image), torch.tensor([1.0, 0.5]))
    with pytest.raises(ValueError, match="image tokens"):
        head(h, sentence, torch.zeros(2, 4, dtype=torch.long))
    # keys: the image tokens are read from other states (the LM's input), the sentence from h
    keys = h.clone()
    keys[0, :2] = torch.stack([e[2], e[2]])  # row 0's image now holds only e2, which its sentence never says
    assert_close(head(h, sentence, image, keys), torch.tensor([0.0, 0.5]))


class _TableValue(torch.nn.Module):
    """V(s) read from a learnable table by sentence: the TD batch plumbing without a VLM."""

    def __init__(self, table: dict[str, float]) -> None:
        super().__init__()
        self.keys = list(table)
        self.v = torch.nn.Parameter(torch.tensor([table[k] for k in self.keys]))

    def encode(self, images, sentences):
        return {"idx": torch.tensor([self.keys.index(s) for s in sentences])}

    def forward(self, idx):
        return self.v[idx]


def test_td_batch_loss_bootstraps_live_rows_without_gradient_and_ends_terminal_ones():
    from groundloop.vimar.value import td_batch_loss

    model = _TableValue({"a": 1.0, "b": 2.0, "c": 0.5})
    # rows: a -> b (live, r 0.1), b terminal (r 0.3)
    loss = td_batch_loss(model, [None, None], ["a", "b"], ["b", ""], [0.1, 0.3], [False, True], gamma=0.9)
    # targets: 0.1 + 0.9 * 2.0 = 1.9 for a, 0.3 for b; MSE = ((1 - 1.9)^2 + (2 - 0.3)^2) / 2
    assert_close(loss, torch.tensor(((1 - 1.9) ** 2 + (2 - 0.3) ** 2) / 2))
    loss.backward()
    # semi-gradient: b's value gets gradient only as a state (2 (2 - 0.3) / 2), not as a's target
    assert_close(model.v.grad, torch.tensor([1 - 1.9, 2 - 0.3, 0.0]))


class _TableValueWithReward(_TableValue):
    """V = table + reward table, the reward table as the reward head's part."""

    def __init__(self, table: dict[str, float], reward: dict[str, float]) -> None:
        super().__init__(table)
        self.r = torch.nn.Parameter(torch.tensor([reward[k] for k in self.keys]))

    def forward(self, idx, parts=False):
        v = self.v[idx] + self.r[idx]
        return (v, self.r[idx]) if parts else v


def test_td_batch_loss_adds_the_reward_heads_regression_on_the_steps_own_reward():
    from groundloop.vimar.value import td_batch_loss

    model = _TableValueWithReward({"a": 1.0, "b": 2.0}, {"a": 0.5, "b": -0.5})
    # V(a) = 1.5, V(b) = 1.5; a -> b live with r 0.1, b terminal with r 0.3
    loss = td_batch_loss(
        model, [None, None], ["a", "b"], ["b", ""], [0.1, 0.3], [False, True], gamma=0.9, reward_weight=2.0
    )
    td = ((1.5 - (0.1 + 0.9 * 1.5)) ** 2 + (1.5 - 0.3) ** 2) / 2
    reward = ((0.5 - 0.1) ** 2 + (-0.5 - 0.3) ** 2) / 2
    assert_close(loss, torch.tensor(td + 2.0 * reward))
    loss.backward()
    # the reward part gets TD's gradient (it is inside V) plus its own regression's
    td_grad = torch.tensor([1.5 - 1.45, 1.5 - 0.3])
    assert_close(model.v.grad, td_grad)
    assert_close(model.r.grad, td_grad + 2.0 * torch.tensor([0.5 - 0.1, -0.5 - 0.3]))


def test_value_model_with_a_reward_head_is_the_sum_of_its_heads_and_round_trips(tmp_path):
    from groundloop.models import load_vlm
    from groundloop.vimar.value import ValueModel
    from groundloop.worlds import shapes as world

    torch.manual_seed(0)
    model = ValueModel(*load_vlm("shapesworld/vlm"), meta={"pool": "match", "match_keys": "input", "reward_head": True})
    for p in list(model.head.parameters()) + list(model.reward_head.parameters()):
        torch.nn.init.normal_(p, std=0.1)  # fresh heads start near zero; make both parts matter
    _, image = next(world.scenes("test", 1, seed=3))
    sentences = ["A small red circle is at the top.", "In the image, there are two objects."]
    enc = model.encode([image] * 2, sentences)
    with torch.no_grad():
        v, r = model(**enc, parts=True)
        args = _match_args(model, enc)
        assert_close(r, model.reward_head(*args))
        assert_close(v, model.head(*args) + model.reward_head(*args))
    model.save_pretrained(tmp_path / "v")
    again = ValueModel.from_pretrained(tmp_path / "v")
    assert again.reward_head is not None
    assert_close(torch.tensor(again.values([image] * 2, sentences)), v)
    plain = ValueModel(*load_vlm("shapesworld/vlm"), meta={"pool": "match", "match_keys": "input"})
    with pytest.raises(ValueError, match="reward head"):
        plain(**enc, parts=True)


def _match_args(model, enc):
    out = model.vlm.model(**{k: v for k, v in enc.items() if k != "sentence_mask"}, output_hidden_states=True)
    return (
        out.last_hidden_state,
        enc["sentence_mask"],
        enc["input_ids"] == model.vlm.config.image_token_id,
        out.hidden_states[0],
    )


@pytest.mark.parametrize(
    "meta",
    [
        {"pool": "last"},
        {"pool": "mean"},
        {"pool": "match", "match_keys": "input", "reward_head": True},
        {"pool": "match", "match_keys": "last"},
    ],
)
def test_values_through_the_shared_image_prefix_equal_the_full_pass(meta):
    """`values` runs each image's chat prefix once and only the sentences per state; a decoder
    must get the same numbers as from one full forward pass per state, whatever the pooling,
    with sentences of different lengths, several images and repeated states."""
    from groundloop.models import load_vlm
    from groundloop.vimar.value import ValueModel
    from groundloop.worlds import shapes as world

    torch.manual_seed(0)
    model = ValueModel(*load_vlm("shapesworld/vlm"), meta=meta)
    for head in filter(None, (model.head, model.reward_head)):
        for p in head.parameters():
            torch.nn.init.normal_(p, std=0.1)
    images = [im for _, im in world.scenes("test", 3, seed=5)]
    sentences = [
        "A small red circle is at the top.",
        "In the image, there are two objects.",
        "Blue.",
        "A large green triangle is to the left of the yellow square near the bottom.",
    ]
    # as decoders pass them: each image's states together, then interleaved; the last repeats the first
    ims = [images[i // 4] for i in range(12)] + [images[i % 3] for i in range(6)] + [images[0]]
    sents = (
        [sentences[i % 4] for i in range(12)] + [sentences[(i + 1) % 4] + " Two." for i in range(6)] + [sentences[0]]
    )
    calls = []
    model.vlm.model.register_forward_hook(lambda m, a, kw, out: calls.append(1), with_kwargs=True)
    shared = torch.tensor(model.values(ims, sents))
    assert len(calls) == 2  # one pass over the 3 prefixes, one over the 18 distinct states
    full = torch.tensor(model.values(ims, sents, share_prefix=False))
    assert_close(shared, full, atol=1e-5, rtol=1e-5)
    assert shared[18] == shared[0]
    assert shared.std() > 0.01  # the heads are not constant, so equality means something
