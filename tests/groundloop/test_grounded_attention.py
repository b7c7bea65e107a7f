"""Grounded attention's pure parts on hand-made cases, and the grounded example / loss on the
shipped VLM (tiny)."""

import math

import pytest
import torch

from groundloop.genrm import grounded_attention as ga


def test_box_patches_cover_exactly_the_overlapped_cells():
    # 4 x 4 grid: a box over the top-left quarter touches cells (0,0), (0,1), (1,0), (1,1)
    assert ga.box_patches([(0.0, 0.0, 0.5, 0.5)], 4) == [0, 1, 4, 5]
    # a box inside one cell, and a second box in the last cell; duplicates merge
    assert ga.box_patches([(0.3, 0.3, 0.45, 0.45), (0.8, 0.8, 1.0, 1.0), (0.26, 0.26, 0.3, 0.3)], 4) == [5, 15]
    assert ga.box_patches([], 4) == []
    with pytest.raises(ValueError, match="normalized"):
        ga.box_patches([(10, 10, 20, 20)], 4)


def test_phrase_end_finds_the_last_occurrence_after_start():
    ids = [7, 1, 2, 9, 1, 2, 5]
    assert ga.phrase_end(ids, [1, 2]) == 5
    assert ga.phrase_end(ids, [1, 2], start=0) == 5
    assert ga.phrase_end(ids[:4], [1, 2]) == 2
    with pytest.raises(ValueError, match="not found"):
        ga.phrase_end(ids, [2, 1])
    with pytest.raises(ValueError, match="not found"):
        ga.phrase_end(ids[:4], [1, 2], start=2)


def test_target_is_uniform_on_patches_or_all_on_the_sink():
    t = ga.target(10, image_start=3, patches=[0, 2])
    assert t.tolist() == [0, 0, 0, 0.5, 0, 0.5, 0, 0, 0, 0]
    assert ga.target(5, image_start=1, patches=[]).tolist() == [1, 0, 0, 0, 0]


def test_attention_loss_is_the_cross_entropy_at_the_query_rows():
    attn = torch.zeros(2, 3, 3)
    attn[0, 2] = torch.tensor([0.5, 0.25, 0.25])
    attn[1, 1] = torch.tensor([0.1, 0.9, 0.0])
    targets = torch.tensor([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    loss = ga.attention_loss(attn, torch.tensor([2, 1]), targets, eps=0.0)
    assert loss.item() == pytest.approx((-math.log(0.25) - math.log(0.1)) / 2, rel=1e-6)


def test_grounded_example_points_at_the_phrase_and_its_patches():
    from PIL import Image

    from groundloop import finetune, prompts
    from groundloop.models import load_vlm

    model, processor = load_vlm("shapesworld/vlm")
    image = Image.new("RGB", (96, 96))
    q = prompts.yes_no_question("red circle")
    ex = finetune.grounded_example(
        processor, image, q, "Yes.", "red circle", [(0.0, 0.0, 0.2, 0.2)], model.config.image_token_id
    )
    tok = processor.tokenizer
    assert tok.convert_ids_to_tokens(ex["input_ids"][ex["attn_query"][0]]).strip("Ġ") == "circle"
    start = ex["input_ids"].index(model.config.image_token_id)
    # 8 x 8 patches of 12 px: a 19 px box covers the top-left 2 x 2
    assert torch.nonzero(ex["attn_target"][0]).flatten().tolist() == [start, start + 1, start + 8, start + 9]
    absent = finetune.grounded_example(processor, image, q, "No.", "red circle", [], model.config.image_token_id)
    assert absent["attn_target"][0][0] == 1.0

    model.set_attn_implementation("eager")
    batch = finetune.collate([ex, absent], processor)
    plain = finetune.grounded_loss(model, batch, 0.0, layer=1)
    grounded = finetune.grounded_loss(model, batch, 1.0, layer=1)
    assert grounded.item() > plain.item()  # the attention term is added, not replacing the LM loss
    grounded.backward()
    assert model.model.language_model.layers[1].self_attn.q_proj.weight.grad.abs().sum() > 0


def test_phrase_ends_walks_forward_through_repeated_phrases():
    ids = [5, 1, 2, 6, 1, 2, 3, 1, 2]
    assert ga.phrase_ends(ids, [[1, 2], [3], [1, 2]], start=1) == [2, 6, 8]
    assert ga.phrase_ends(ids, [[1, 2], [1, 2]], start=3) == [5, 8]
    with pytest.raises(ValueError, match="not found"):
        ga.phrase_ends(ids, [[3], [6]])


def test_attention_loss_with_several_queries_per_row():
    attn = torch.full((2, 3, 3), 1 / 3)
    attn[0, 1] = torch.tensor([0.5, 0.5, 0.0])
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    loss = ga.attention_loss(attn, torch.tensor([1, 2, 0]), targets, rows=torch.tensor([0, 0, 1]))
    assert loss.item() == pytest.approx((math.log(2) + 2 * math.log(3)) / 3, rel=1e-4)


def test_judgement_example_grounds_every_claim_of_the_critique():
    from PIL import Image

    from groundloop.genrm import critique, experts
    from groundloop.genrm import judge as genrm
    from groundloop.models import load_vlm
    from groundloop.vocab import Claim

    model, processor = load_vlm("shapesworld/vlm")
    a = experts.Checked("A small red circle.", (Claim("small red circle"),), (True,))
    b = experts.Checked(
        "A small red circle. A blue square.", (Claim("small red circle"), Claim("blue square")), (True, False)
    )
    thought = critique.critique(a, b)  # "A: small red circle yes. B: small red circle yes; blue square no."
    box = [(0.5, 0.5, 0.6, 0.6)]
    grounding = [("small red circle", box), ("small red circle", box), ("blue square", [])]
    image = Image.new("RGB", (96, 96))
    ex = genrm.example(
        processor,
        image,
        critique.judge_prompt("Describe.", a.response, b.response),
        thought,
        "A",
        grounding=grounding,
        image_token_id=model.config.image_token_id,
    )
    tok = processor.tokenizer
    words = [tok.convert_ids_to_tokens(ex["input_ids"][q]).strip("Ġ") for q in ex["attn_query"]]
    assert words == ["circle", "circle", "square"]
    # all three queries sit in the critique, after the prompt, in order
    first = ex["labels"].index(next(x for x in ex["labels"] if x != -100))
    assert first < ex["attn_query"][0] < ex["attn_query"][1] < ex["attn_query"][2] < ex["verdict_at"]
    start = ex["input_ids"].index(model.config.image_token_id)
    # (0.5, 0.5)-(0.6, 0.6) lies inside patch (row 4, column 4) of the 8 x 8 grid
    assert torch.nonzero(ex["attn_target"][0]).flatten().tolist() == [start + 4 * 8 + 4]
    assert ex["attn_target"][2][0] == 1.0  # the refuted claim: nothing to look at

    plain = genrm.example(processor, image, critique.judge_prompt("Describe.", b.response, a.response), thought, "B")
    batch = genrm.collate([ex, plain], processor)
    assert batch["attn_row"].tolist() == [0, 0, 0] and batch["attn_target"].shape == (3, batch["input_ids"].shape[1])
    model.set_attn_implementation("eager")
    ids = genrm.label_ids(tok)
    base = genrm.loss(model, batch, ids, lam=1.0)
    grounded = genrm.loss(model, batch, ids, lam=1.0, attn_weight=1.0)
    assert grounded.item() > base.item()
