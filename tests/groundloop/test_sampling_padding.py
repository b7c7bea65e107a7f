"""Batched generation and teacher forcing must not depend on left padding or batch mates."""

import pytest
import torch

from groundloop import prompts
from groundloop.sampling import HFSampler
from groundloop.svp.scoring import caption_logprobs
from groundloop.worlds import build
from groundloop.worlds import shapes as world


@pytest.fixture(scope="module")
def tiny_vlm():
    torch.manual_seed(0)
    tok = build.build_tokenizer()
    model, processor = build.build_vlm(tok, vision_hidden=32, vision_layers=1, lm_hidden=32, lm_layers=1)
    return model.eval(), processor


def test_greedy_caption_is_the_same_alone_and_in_a_padded_batch(tiny_vlm):
    sampler = HFSampler(*tiny_vlm, max_new_tokens=12)
    (_, a), (_, b) = world.scenes("val", 2, seed=0)
    long_prompt = prompts.grounded_prompt("red circle [0.10, 0.10, 0.30, 0.30]; blue square [0.5, 0.5, 0.7, 0.7]")
    alone = sampler.generate([a], [prompts.BASE_PROMPT])[0][0]
    batched = sampler.generate([b, a], [long_prompt, prompts.BASE_PROMPT])[1][0]
    assert alone == batched


def test_teacher_forced_logprobs_ignore_padding_and_batch_mates(tiny_vlm):
    model, processor = tiny_vlm
    (_, a), (_, b) = world.scenes("val", 2, seed=1)
    cap = "A small red circle is at the top left."
    lp1, m1 = caption_logprobs(model, processor, [a], [prompts.BASE_PROMPT], [cap])
    lp2, m2 = caption_logprobs(
        model,
        processor,
        [b, a],
        [prompts.grounded_prompt("x [0.00, 0.00, 1.00, 1.00]"), prompts.BASE_PROMPT],
        ["In the image, there are two objects, one circle and one cross.", cap],
    )
    L = int(m1[0].sum())
    assert int(m2[1].sum()) == L and m2[1, L:].sum() == 0
    torch.testing.assert_close(lp2[1, :L], lp1[0, :L], atol=1e-4, rtol=1e-4)
