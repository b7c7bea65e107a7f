"""The reward model's scaffolded critique on the tiny shipped VLM: the claims come from the
responses, the model fills every check, and the result has exactly the trained format."""

import re

import pytest

from groundloop import prompts
from groundloop.genrm import critique, experts
from groundloop.vocab.shapes import ShapesVocabulary
from groundloop.worlds import shapes as world

SHAPES = ShapesVocabulary()

A = (
    "In the image, there are two objects, one square and one circle. A large green square is at the left. "
    "A small red circle is at the top."
)
B = "In the image, there is one object, one cross. A small blue cross is at the right."


@pytest.fixture(scope="module")
def judge():
    from groundloop.genrm.judge import GenRM
    from groundloop.models import load_vlm

    return GenRM(*load_vlm("shapesworld/vlm"), critique="scaffold", seed=0, vocab=SHAPES)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_scaffolded_critique_checks_every_claim_in_the_trained_format(judge, temperature):
    objects = [world.SceneObject("square", "green", "large", (10, 30, 40, 60))]
    image = world.render(objects, seed=0)
    (j,) = judge.judge([image], [prompts.BASE_PROMPT], [A], [B], temperature=temperature)
    checks = [w == "yes" for w in re.findall(r" (yes|no)(?=[;.])", j.thought)]
    claims = [[c.text for c in SHAPES.claims(x)] for x in (A, B)]
    assert len(checks) == sum(map(len, claims)) == 6
    assert j.thought == critique.critique_so_far(claims, checks)
    assert j.verdict in critique.LABELS and j.text == critique.with_verdict(j.thought, j.verdict)
    assert (j.verdict == "A") == (j.logp_a >= j.logp_b)


def test_unknown_critique_mode_is_refused():
    from groundloop.genrm.judge import GenRM
    from groundloop.models import load_vlm

    with pytest.raises(ValueError, match="critique must be one of"):
        GenRM(*load_vlm("shapesworld/vlm"), critique="freeform")


def test_checks_only_training_learns_the_checks_and_the_verdict(judge):
    from groundloop.genrm import judge as genrm

    tok = judge.processor.tokenizer
    a = experts.Checked(A, tuple(SHAPES.claims(A)), (True, True, True, False))
    b = experts.Checked(B, tuple(SHAPES.claims(B)), (True, True))
    image = world.render([world.SceneObject("square", "green", "large", (10, 30, 40, 60))], seed=0)
    ex = genrm.example(
        judge.processor,
        image,
        critique.judge_prompt(prompts.BASE_PROMPT, A, B),
        critique.critique(a, b),
        "B",
        learn="checks",
        no_weight=4.0,
    )
    # this vocabulary spells " yes" / " no" as space, "y" / "n", "es" / "o": the deciding token is learned
    learned = [tok.convert_ids_to_tokens(x) for x in ex["labels"] if x != -100]
    assert learned == ["y", "y", "y", "n", "y", "y", "B", tok.eos_token]
    weights = [w for w, x in zip(ex["loss_weight"], ex["labels"]) if x != -100]
    assert weights == [1, 1, 1, 4.0, 1, 1, 1, 1]
    batch = genrm.collate([ex], judge.processor)
    assert genrm.loss(judge.model, batch, genrm.label_ids(tok), lam=1.0).item() > 0


def test_check_tokens_split_yes_and_no_where_they_differ(judge):
    from groundloop.genrm import judge as genrm

    tok = judge.processor.tokenizer
    prefix, (yes, no) = genrm.check_tokens(tok)
    for word, first in (("yes", yes), ("no", no)):
        ids = tok(f" {word}", add_special_tokens=False)["input_ids"]
        assert ids[: len(prefix)] == prefix and ids[len(prefix)] == first
    assert yes != no and (judge.check_prefix, judge.check_ids) == (prefix, [yes, no])


@pytest.fixture(scope="module")
def factored():
    from groundloop.genrm.judge import GenRM
    from groundloop.models import load_vlm

    return GenRM(*load_vlm("shapesworld/vlm"), critique="factored", seed=0, vocab=SHAPES)


def test_factored_critique_answers_each_claim_once_by_its_own_question(factored):
    # B repeats three of A's claims; each gets one answer, written in both halves of the critique
    b = (
        "In the image, there are two objects, one square and one cross. A large green square is at the left. "
        "A small blue cross is at the right."
    )
    image = world.render([world.SceneObject("square", "green", "large", (10, 30, 40, 60))], seed=0)
    (j,) = factored.judge([image], [prompts.BASE_PROMPT], [A], [b])
    claims = [[c.text for c in SHAPES.claims(x)] for x in (A, b)]
    checks = [w == "yes" for w in re.findall(r" (yes|no)(?=[;.])", j.thought)]
    assert j.thought == critique.critique_so_far(claims, checks) and len(checks) == 8
    said = dict(zip(claims[0] + claims[1], checks))
    assert all(said[c] == checks[len(claims[0]) + i] for i, c in enumerate(claims[1]))
    # and the answer is the model's reply to the claim's yes/no question about this image
    assert factored.check([image] * len(said), list(said)) == list(said.values())
    assert (j.verdict == "A") == (j.logp_a >= j.logp_b)


def test_factored_checks_come_from_the_base_vlm_not_the_adapter():
    import torch

    from groundloop.finetune import add_lora
    from groundloop.genrm.judge import GenRM
    from groundloop.models import load_vlm
    from pipelines.genrm.config import Lora

    model, processor = load_vlm("shapesworld/vlm")
    image = world.render([world.SceneObject("circle", "red", "small", (50, 20, 70, 40))], seed=1)
    claims = ["small red circle", "large blue square", "one circle", "two squares", "green cross"]
    plain = GenRM(model, processor, critique="factored", vocab=SHAPES)
    base_says = plain.check([image] * len(claims), claims)
    seqs = [genrm_prompt(processor, image, c) for c in claims]
    base_logits = plain.next_logits(seqs)
    lora = add_lora(load_vlm("shapesworld/vlm")[0], 8, 16, 0.0, Lora().target_modules)
    with torch.no_grad():  # an adapter far from zero: it changes what the model would answer
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(0))
    judge = GenRM(lora, processor, critique="factored", vocab=SHAPES)
    assert not torch.allclose(judge.next_logits(seqs), base_logits, atol=1e-2)
    assert judge.check([image] * len(claims), claims) == base_says


def genrm_prompt(processor, image, claim):
    from groundloop.genrm import judge as genrm

    return genrm._prompt_row(processor, image, SHAPES.check_question(claim))


def test_factored_checks_say_yes_from_the_calibrated_threshold_on(factored):
    image = world.render([world.SceneObject("circle", "red", "small", (50, 20, 70, 40))], seed=1)
    claims = ["small red circle", "large blue square", "one circle", "two squares", "green cross", "red circle"]
    margins = factored.check_margins([image] * len(claims), claims)
    threshold = sorted(margins)[len(margins) // 2]
    factored.check_threshold = threshold
    try:
        assert factored.check([image] * len(claims), claims) == [m >= threshold for m in margins]
        assert 0 < sum(factored.check([image] * len(claims), claims)) < len(claims)
    finally:
        factored.check_threshold = 0.0
