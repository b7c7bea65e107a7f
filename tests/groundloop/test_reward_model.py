"""VL-GenRM's pure parts on hand-made cases and hand-computed tensors."""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch.testing import assert_close

from groundloop.genrm import critique, experts, losses, pairing
from groundloop.models.detection import Detection
from groundloop.vocab import Claim
from groundloop.vocab.shapes import ShapesVocabulary
from groundloop.worlds import reward_bench as rb
from groundloop.worlds import shapes as world

SHAPES = ShapesVocabulary()


def det(phrase: str) -> Detection:
    return Detection(phrase, (0.1, 0.1, 0.2, 0.2), 0.9)


def checked(response: str, detections: list[Detection]) -> experts.Checked:
    claims = SHAPES.claims(response)
    return experts.Checked(response, tuple(claims), tuple(experts.check_claims(claims, detections)))


TRUE = (
    "In the image, there are two objects, one circle and one square. A small red circle is at the left. "
    "A large blue square is at the right."
)
HALLU = (
    "In the image, there are two objects, two circles. A small red circle is at the left. "
    "A large green circle is at the right."
)
# What the expert sees in the image: the small red circle and the large blue square.
SEEN = [det("small red circle"), det("large blue square"), det("circle"), det("square")]


def test_claims_cover_objects_with_size_and_the_count_sentence():
    claims = SHAPES.claims(TRUE)
    assert [c.text for c in claims] == ["small red circle", "large blue square", "one circle", "one square"]
    # the claims' own phrases, then what to look at for each (the object without its size)
    assert experts.expert_queries(claims, SHAPES) == [
        "small red circle",
        "large blue square",
        "circle",
        "square",
        "red circle",
        "blue square",
    ]


def test_each_claim_has_its_own_yes_no_question():
    claims = [c.text for c in SHAPES.claims("There are two objects, two circles. A small red circle is at the top.")]
    assert [SHAPES.check_question(c) for c in claims] == [
        "Is there a small red circle in the image?",
        "Are there exactly two circles in the image?",
    ]


def test_claim_boxes_point_at_the_object_whatever_the_claimed_size():
    claims = SHAPES.claims("A large red circle is at the top. A green cross is at the left. There are two circles.")
    red = Detection("red circle", (0.1, 0.1, 0.3, 0.3), 0.9)
    circle = Detection("circle", (0.1, 0.1, 0.3, 0.3), 0.9)
    found = [Detection("small red circle", (0.1, 0.1, 0.3, 0.3), 0.9), red, circle]
    assert experts.check_claims(claims, found) == [False, False, False]  # wrong size, no cross, one circle
    # the wrong-size claim still looks at the red circle; nothing to look at for the cross
    assert experts.claim_boxes(claims, found, SHAPES) == [[red.box], [], [circle.box]]


def test_verified_response_beats_hallucinated_one():
    good, bad = checked(TRUE, SEEN), checked(HALLU, SEEN)
    assert good.verified and good.refuted == 0
    # "large green circle" is not seen, and "two circles" is a wrong count
    assert dict(zip((c.text for c in bad.claims), bad.holds)) == {
        "small red circle": True,
        "large green circle": False,
        "two circles": False,
    }
    assert pairing.build_pairs([bad, good], max_pairs=5, rng=random.Random(0)) == [(1, 0)]


def test_unseparable_pairs_are_dropped():
    good = checked(TRUE, SEEN)
    bad = checked(HALLU, SEEN)
    also_bad = checked("In the image, there is one object, one cross. A small red cross is at the top.", SEEN)
    # two verified (identical texts) and two refuted responses: only verified-vs-refuted pairs
    pairs = pairing.build_pairs([good, bad, good, also_bad], max_pairs=10, rng=random.Random(0))
    assert sorted(pairs) == [(0, 1), (0, 3), (2, 1), (2, 3)]
    assert pairing.build_pairs([bad, also_bad], 10, random.Random(0)) == []
    # graded: two refuted responses are paired only when one has fewer refuted claims
    worse = experts.Checked("worse", bad.claims + also_bad.claims, bad.holds + also_bad.holds)
    assert worse.refuted > bad.refuted == also_bad.refuted
    graded = pairing.build_pairs([bad, also_bad, worse], 10, random.Random(0), graded=5)
    assert sorted(graded) == [(0, 2), (1, 2)]
    assert pairing.build_pairs([bad, also_bad, worse], 10, random.Random(0), graded=1) in ([(0, 2)], [(1, 2)])
    # a response with nothing checkable is neither verified nor refuted
    empty = checked("A nice picture.", SEEN)
    assert not empty.verified and empty.refuted == 0
    assert pairing.build_pairs([empty, bad], 10, random.Random(0)) == []


def test_critique_checks_claims_and_verdict_round_trips():
    text = critique.with_verdict(critique.critique(checked(HALLU, SEEN), checked(TRUE, SEEN)), "B")
    assert text.startswith("A: small red circle yes; large green circle no; two circles no. B: small red circle yes;")
    assert critique.parse_verdict(text) == "B"
    assert critique.thought_of(text).endswith(
        "one square yes. Where they differ, refuted: A 2, B 0; confirmed: A 0, B 3. B has fewer refuted claims."
    )
    with pytest.raises(ValueError):
        critique.with_verdict("x", "C")


@pytest.mark.parametrize(
    "text,want",
    [
        ("A: red circle yes. Verdict: A", "A"),
        ("verdict: b", "B"),
        ("Verdict: Response B", "B"),
        ("Verdict: (A)", "A"),
        ("Verdict: A ... on second thought Verdict: B", "B"),
        ("A: red circle yes. Verdict:", None),  # truncated
        ("A: red circle yes; B: blue", None),  # no verdict at all
        ("Verdict: C", None),
        ("Verdict: Alpha", None),
        ("", None),
    ],
)
def test_parse_verdict_of_malformed_outputs(text, want):
    assert critique.parse_verdict(text) == want


def test_mixture_loss_on_hand_computed_tensors():
    token_logp = torch.tensor([[-1.0, -2.0, -5.0], [-0.5, -0.5, -9.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    right, wrong = torch.tensor([-0.1, -2.0]), torch.tensor([-2.3, -0.2])
    weight = torch.tensor([1.0, 1.0])
    sft = (1 + 2 + 0.5 + 0.5 + 9) / 5
    bt = (-math.log(1 / (1 + math.exp(-2.2))) - math.log(1 / (1 + math.exp(1.8)))) / 2
    assert_close(losses.mixture_loss(token_logp, mask, right, wrong, weight, 0.5), torch.tensor(sft + 0.5 * bt))
    # lam = 0 is plain fine-tuning; a zero weight switches the BT term off for that example
    assert_close(losses.mixture_loss(token_logp, mask, right, wrong, weight, 0.0), torch.tensor(sft))
    only_first = torch.tensor([1.0, 0.0])
    bt1 = -math.log(1 / (1 + math.exp(-2.2)))
    assert_close(losses.mixture_loss(token_logp, mask, right, wrong, only_first, 1.0), torch.tensor(sft + bt1))


def test_margin_and_preference():
    assert_close(losses.margin(torch.tensor([-0.1]), torch.tensor([-2.3])), torch.tensor([2.2]))
    assert_close(losses.preference(torch.tensor(math.log(0.75)), torch.tensor(math.log(0.25))), torch.tensor(0.75))


def test_rejection_keeps_exactly_correct_critiques_at_or_above_threshold():
    margins = [2.0, 0.5, -1.0, 1.0, 3.0, 0.9]
    correct = [True, True, False, True, False, True]  # a wrong verdict never passes, whatever its margin
    assert losses.reject(margins, correct, 0.9) == [True, False, False, True, False, True]
    # retention 0.5 of 6 critiques: keep 3, the 3 best correct ones
    t = losses.margin_threshold(margins, correct, 0.5)
    assert t == 0.9 and sum(losses.reject(margins, correct, t)) == 3
    assert losses.margin_threshold(margins, [False] * 6, 0.5) == math.inf
    with pytest.raises(ValueError):
        losses.reject([1.0], [True, False], 0.0)


def test_rejection_per_label_keeps_the_same_share_of_each_right_label():
    # the judge leans to A: its A-labelled critiques have the larger margins
    margins = [5.0, 4.0, 3.5, 3.0, 1.0, 0.8, 0.5, 0.2]
    correct = [True] * 8
    labels = ["A", "A", "A", "A", "B", "B", "B", "B"]
    one = losses.reject(margins, correct, losses.margin_threshold(margins, correct, 0.5))
    assert one == [True] * 4 + [False] * 4  # one threshold: only A-labelled critiques survive
    keep, thresholds = losses.reject_per_label(margins, correct, labels, 0.5)
    assert keep == [True, True, False, False, True, True, False, False]
    assert thresholds == {"A": 4.0, "B": 0.8}
    # still only correct critiques, at or above their own label's threshold
    keep, _ = losses.reject_per_label(margins, [True, False] * 4, labels, 0.5)
    assert keep == [True, False, True, False, True, False, True, False]
    with pytest.raises(ValueError, match="labels"):
        losses.reject_per_label([1.0], [True], ["A", "B"], 0.5)


def test_perturbed_expert_misses_and_false_alarms():
    rng = random.Random(0)
    dets = [det("red circle")] * 1000
    kept = experts.perturb(dets, [], miss_rate=0.3, false_alarm_rate=0.0, rng=rng)
    assert 620 < len(kept) < 780
    extra = experts.perturb([], ["green cross"] * 1000, miss_rate=0.0, false_alarm_rate=0.2, rng=rng)
    assert 140 < len(extra) < 260 and all(d.phrase == "green cross" for d in extra)
    assert experts.perturb(dets[:5], ["a"], 0.0, 0.0, rng) == dets[:5]


def test_reward_bench_pairs_are_true_by_the_annotations():
    scenes = [(i, objs) for i, (objs, _) in enumerate(world.scenes("test", 60, seed=3))]
    pairs = rb.build(scenes, per_category=20, seed=0)
    by_id = dict(scenes)
    assert {p.category for p in pairs} == set(rb.CATEGORIES)
    for p in pairs:
        assert p.chosen == world.caption(by_id[p.image_id]) and p.rejected != p.chosen
        truth = {o.name for o in by_id[p.image_id]}
        named = {
            f"{c} {s}"
            for c, s in (
                x.split()[-2:] for x in experts.expert_queries(SHAPES.claims(p.rejected), SHAPES) if len(x.split()) >= 2
            )
        }
        if p.category == "hallucination":
            assert named - truth  # an object type that is not in the image
        if p.category == "general":  # an object left out, nothing made up
            assert named <= truth and p.rejected.count(" is at the ") == len(by_id[p.image_id]) - 1
    assert rb.accuracy(["a", "a", "b"], [True, False, True]) == {"a": 0.5, "b": 1.0, "overall": 2 / 3}


def test_swapped_hallucination_names_as_many_objects_as_the_truth():
    scenes = [(i, objs) for i, (objs, _) in enumerate(world.scenes("test", 40, seed=9))]
    pairs = rb.build(scenes, per_category=15, seed=0, categories=["hallucination_swap"])
    assert len(pairs) == 15
    for p in pairs:
        truth = {o.name for o in dict(scenes)[p.image_id]}
        objs = [c.text for c in SHAPES.claims(p.rejected) if c.count is None]
        assert p.rejected.count(" is at the ") == p.chosen.count(" is at the ")  # as many objects named
        assert len({" ".join(o.split()[-2:]) for o in objs} - truth) == 1  # one object type not in the image
    with pytest.raises(ValueError, match="unknown RewardBench categories"):
        rb.build(scenes, 1, 0, categories=["colour"])


def test_self_labels_trust_what_the_model_says_most():
    # the model says "blue square" in 3 of 4 samples (its prior), the image has a green one
    samples = [
        "In the image, there is one object, one square. A large blue square is at the left.",
        "In the image, there is one object, one square. A large blue square is at the left.",
        "In the image, there is one object, one square. A large blue square is at the top.",
        "In the image, there is one object, one square. A large green square is at the left.",
    ]
    checks = pairing.self_checks(samples, SHAPES)
    assert [c.verified for c in checks] == [True, True, True, False]
    # the expert disagrees: with the truth in view the green one wins
    expert = [checked(s, [det("large green square"), det("square")]) for s in samples]
    assert [c.verified for c in expert] == [False, False, False, True]


def test_description_thought_lists_confirmed_objects_only():
    a, b = checked(HALLU, SEEN), checked(TRUE, SEEN)
    assert critique.thought(a, b, "description") == "The image shows small red circle, large blue square."
    assert critique.thought(a, b, "critique") == critique.critique(a, b)
    with pytest.raises(ValueError):
        critique.thought(a, b, "essay")


def test_scaffolded_critique_opens_one_slot_at_a_time_and_ends_as_the_critique():
    a = experts.Checked("x", (Claim("small red circle"), Claim("circle", 1)), (True, False))
    b = experts.Checked("y", (), ())
    claims = [[c.text for c in a.claims], []]
    assert critique.critique_so_far(claims, []) == "A: small red circle"
    assert critique.critique_so_far(claims, [True]) == "A: small red circle yes; one circle"
    assert (
        critique.critique_so_far(claims, [True, False])
        == critique.critique(a, b)
        == (
            "A: small red circle yes; one circle no. B: nothing to check. "
            "Where they differ, refuted: A 1, B 0; confirmed: A 1, B 0. B has fewer refuted claims."
        )
    )
    # a refuted claim both responses make does not count for either
    shared = [["blue square", "red circle"], ["blue square", "two squares"]]
    assert critique.critique_so_far(shared, [False, True, False, False]).endswith(
        "B: blue square no; two squares no. Where they differ, refuted: A 0, B 1; confirmed: A 1, B 0."
        " A has fewer refuted claims."
    )
    both = [["blue square"], ["green cross"]]
    assert critique.critique_so_far(both, [False]) == "A: blue square no. B: green cross"
    with pytest.raises(ValueError, match="3 checks for 2 claims"):
        critique.critique_so_far(both, [True, True, True])


def test_tally_prefers_fewer_refuted_then_more_confirmed_where_the_responses_differ():
    # B refutes one claim of its own: A wins though B confirms more
    assert (
        critique.tally_prefers(
            ["red circle"], [True], ["blue square", "green cross", "two squares"], [True, True, False]
        )
        == "A"
    )
    # refuted tie (a shared claim never counts): the more complete one wins
    assert (
        critique.tally_prefers(
            ["red circle", "blue square", "one circle"],
            [False, True, True],
            ["red circle", "one circle"],
            [False, True],
        )
        == "A"
    )
    assert critique.tally_prefers(["red circle"], [True], ["red circle", "blue square"], [True, True]) == "B"
    assert critique.tally_prefers(["red circle"], [True], ["green cross"], [True]) is None
    assert critique.tally_prefers(["red circle"], [False], ["green cross"], [False]) is None


def test_complete_pairs_put_the_verified_response_with_more_verified_claims_first():
    one = experts.Checked("a", (Claim("red circle"),), (True,))
    two = experts.Checked("b", (Claim("red circle"), Claim("blue square")), (True, True))
    other = experts.Checked("c", (Claim("green cross"),), (True,))
    wrong = experts.Checked("d", (Claim("red circle"), Claim("blue cross")), (True, False))
    checked = [one, two, other, wrong]
    assert sorted(pairing.build_pairs(checked, 0, random.Random(0), complete=5)) == [(1, 0), (1, 2)]
    assert len(pairing.build_pairs(checked, 0, random.Random(0), complete=1)) == 1
    # faithfulness pairs are unchanged: the three verified responses over the refuted one
    assert sorted(pairing.build_pairs(checked, 10, random.Random(0))) == [(0, 3), (1, 3), (2, 3)]


def test_check_threshold_is_the_one_whose_tally_separates_the_labelled_pairs():
    # pair 1: A's own claim "blue square" is false (margin 0.5), B's own claim true (2.0): label B
    # pair 2: A's own claim true (1.5), B's own claim false (-1.0); a shared claim at 0.2: label A
    pairs = [
        (["red circle", "blue square"], ["red circle", "green cross"], "B"),
        (["red circle", "two circles"], ["red circle", "one circle"], "A"),
    ]
    margins = [[3.0, 0.5, 3.0, 2.0], [0.2, 1.5, 0.2, -1.0]]
    tau, acc = critique.calibrate_check_threshold(pairs, margins, [-2.0, 0.0, 1.0, 2.5])
    # -2: all yes, two ties (0.5); 0: pair 1 tied, pair 2 right (0.75); 1: both right; 2.5: pair 1 tied
    # (both own claims refuted), pair 2 tied (0.5) -- the shared claim never counts
    assert acc == [0.5, 0.75, 1.0, 0.5] and tau == 1.0
    with pytest.raises(ValueError):
        critique.calibrate_check_threshold([], [], [0.0])


def test_claims_are_checked_against_the_annotations():
    from types import SimpleNamespace

    from groundloop.worlds import reward_bench as rb

    objects = [
        SimpleNamespace(category="circle", attributes={"color": "red", "size": "small"}),
        SimpleNamespace(category="circle", attributes={"color": "blue", "size": "large"}),
    ]
    caption = (
        "In the image, there are two objects, two circles. A small red circle is at the top. "
        "A small blue circle is at the left."
    )
    assert [c.text for c in SHAPES.claims(caption)] == ["small red circle", "small blue circle", "two circles"]
    assert rb.claim_truth(objects, caption) == [True, False, True]  # the blue circle is large


def test_hallucination_pairs_do_not_reward_the_shorter_or_the_longer_caption():
    """A judge that prefers fewer (or more) claims must not pass `hallucination`: the
    rejected caption is longer, as long, and shorter about equally often, and always names
    exactly one object type that is not in the image."""
    scenes = [(i, objs) for i, (objs, _) in enumerate(world.scenes("test", 400, seed=11))]
    pairs = rb.build(scenes, per_category=240, seed=1, categories=["hallucination"])
    assert len(pairs) == 240
    sign = []
    for p in pairs:
        objects = dict(scenes)[p.image_id]
        truth = {o.name for o in objects}
        named = [" ".join(c.text.split()[-2:]) for c in SHAPES.claims(p.rejected) if c.count is None]
        assert len(set(named) - truth) == 1
        n_chosen, n_rejected = p.chosen.count(" is at the "), p.rejected.count(" is at the ")
        assert n_chosen == len(objects)
        sign.append((n_rejected > n_chosen) - (n_rejected < n_chosen))
    for form in (1, 0, -1):  # longer, as long, shorter
        assert 0.25 < sign.count(form) / len(sign) < 0.42
    fewer_claims_judge = sum(s > 0 for s in sign) + 0.5 * sign.count(0)
    assert 0.4 < fewer_claims_judge / len(sign) < 0.6


def test_probe_phrases_ask_about_objects_other_images_mentioned_and_this_one_did_not():
    claims = [
        ["small red circle", "one circle"],
        ["large blue square", "small red circle", "two squares"],
        ["small green cross"],
    ]
    probes = pairing.probe_phrases(claims, 5, random.Random(0), SHAPES)
    vocab = {"small red circle", "large blue square", "small green cross"}  # counts are not probed
    assert [sorted(p) for p in probes] == [
        ["large blue square", "small green cross"],
        ["small green cross"],
        ["large blue square", "small red circle"],
    ]
    assert all(set(p) <= vocab and not set(p) & set(c) for p, c in zip(probes, claims))
    one = pairing.probe_phrases(claims, 1, random.Random(0), SHAPES)
    assert [len(p) for p in one] == [1, 1, 1]
    # uniform over the vocabulary, not over how often the policy says a phrase
    many = [["small red circle"]] * 50 + [["large blue square"], ["small green cross"], ["large red cross"]]
    assert pairing.probe_phrases(many[:50], 1, random.Random(1), SHAPES) == [[]] * 50  # nothing else was ever said
    drawn = pairing.probe_phrases([["small red circle"]] * 600 + many[50:], 1, random.Random(1), SHAPES)
    drawn = [p[0] for p in drawn[:600]]
    counts = {c: drawn.count(c) for c in set(drawn)}
    assert set(counts) == {"large blue square", "small green cross", "large red cross"}
    assert min(counts.values()) > 150


def test_separable_pairs_cover_every_comparison_the_expert_tally_decides():
    # two responses that each make one false claim, where only one also makes a true one the
    # other lacks; a verified response; and a response identical in claims to another (a tie)
    wrong_a = experts.Checked("a", (Claim("red circle"), Claim("blue cross")), (True, False))
    wrong_b = experts.Checked("b", (Claim("blue cross"),), (False,))
    right = experts.Checked("c", (Claim("red circle"),), (True,))
    same = experts.Checked("d", (Claim("blue cross"),), (False,))
    checked = [wrong_a, wrong_b, right, same]
    pairs = pairing.build_pairs(checked, 0, random.Random(0), separable=10)
    # the tally: c over a (a's own "blue cross" refuted), c over b and d, a over b and d (tie on
    # refuted, a confirms "red circle"); b vs d make the same claims: not separable
    assert sorted(pairs) == [(0, 1), (0, 3), (2, 0), (2, 1), (2, 3)]
    # pairs already made are not drawn twice, and the cap holds
    base = pairing.build_pairs(checked, 10, random.Random(0))
    both = pairing.build_pairs(checked, 10, random.Random(0), separable=10)
    assert sorted(both) == sorted(set(base) | set(pairs)) and len(both) == len(set(both))
    assert len(pairing.build_pairs(checked, 0, random.Random(0), separable=2)) == 2


def test_tally_ends_with_the_conclusion_the_verdict_follows():
    # fewer refuted decides; a refuted tie goes to more confirmed; a full tie is said to be even
    assert critique.tally(["red circle", "blue cross"], [True, False], ["red circle"], [True]).endswith(
        "refuted: A 1, B 0; confirmed: A 0, B 0. B has fewer refuted claims."
    )
    assert critique.tally(["red circle"], [True], ["red circle", "blue cross"], [True, True]).endswith(
        "refuted: A 0, B 0; confirmed: A 0, B 1. Refuted even; B has more confirmed claims."
    )
    assert critique.tally(["red circle"], [False], ["green cross"], [False]).endswith("They are even.")
    # a shared claim never counts, whatever its check
    assert critique.tally(
        ["red circle", "one circle"], [False, True], ["red circle", "two circles"], [False, False]
    ).endswith("refuted: A 0, B 1; confirmed: A 1, B 0. A has fewer refuted claims.")
