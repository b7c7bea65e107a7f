"""HFSampler.sample, the decoders' engine, on the shipped ShapesWorld VLM: per-row temperatures
in one pass, greedy rows equal to greedy generation, one-sentence continuations of a prefix."""

import pytest
import torch

from groundloop import prompts
from groundloop.models import load_vlm
from groundloop.sampling import HFSampler, RowSampling
from groundloop.vimar.value import split_sentences
from groundloop.worlds import shapes as world


@pytest.fixture(scope="module")
def sampler():
    return HFSampler(*load_vlm("shapesworld/vlm"), max_new_tokens=120, seed=0)


def test_a_greedy_row_matches_greedy_generation_even_beside_sampled_rows(sampler):
    ((_, img),) = world.scenes("test", 1, seed=5)
    greedy = sampler.generate([img], [prompts.BASE_PROMPT])[0][0]
    rows = sampler.sample([img] * 3, [prompts.BASE_PROMPT] * 3, [""] * 3, [0.9, 0.0, 0.9])
    assert rows[1] == greedy and greedy.startswith("In the image")


def test_one_sentence_continues_the_prefix_with_exactly_the_next_sentence(sampler):
    ((_, img),) = world.scenes("test", 1, seed=6)
    full = split_sentences(sampler.generate([img], [prompts.BASE_PROMPT])[0][0])
    assert len(full) >= 3
    nxt = sampler.sample([img], [prompts.BASE_PROMPT], [" ".join(full[:2])], [0.0], one_sentence=True)
    assert nxt == [full[2]]
    end = sampler.sample([img], [prompts.BASE_PROMPT], [" ".join(full)], [0.0], one_sentence=True)
    assert end == [""]  # nothing left to say: the caption ends


def test_row_sampling_keeps_only_the_argmax_for_greedy_rows_and_the_nucleus_for_others():
    scores = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.5, 0.3, 0.15, 0.05]]))
    out = RowSampling([0.0, 1.0], top_p=0.7)(None, scores)
    assert torch.isinf(out[0, 1:]).all() and out[0, 0] == 0
    # top-p 0.7 keeps 0.5 and 0.3 (the mass before 0.15 already reaches 0.8 >= 0.7)
    assert torch.isfinite(out[1, :2]).all() and torch.isinf(out[1, 2:]).all()
