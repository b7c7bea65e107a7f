"""Every core entry point on a tiny random-init model of each major HF VLM family: sampling
(prior, grounded, continuing a prefix), S/Delta scoring against a per-sample computation, LoRA
on the language model only (trained one step, saved, reloaded), the value model's prefix cache,
and the VL-GenRM judge and its training loss."""

from __future__ import annotations

import pytest
import torch

from groundloop import prompts, vocab
from groundloop.models import families, load_vlm
from tests.families import tiny

GROUNDING = "dog [0.10, 0.10, 0.50, 0.60]"
CAPTIONS = ["A red dog on a table.", "Two cats and a man near the car, and more words here."]


def naive_caption_logprobs(model, processor, image, text, caption):
    """One row, no padding: the prompt's processor output with the caption and end appended."""
    enc = processor(
        images=[[image]], text=[families.chat(processor, text)], return_tensors="pt", add_special_tokens=False
    )
    enc.pop("labels", None)
    cap = families.text_ids(processor, caption) + [families.end_id(processor)]
    n = enc["input_ids"].shape[1]
    enc["input_ids"] = torch.cat([enc["input_ids"], torch.tensor([cap])], 1)
    enc["attention_mask"] = torch.ones_like(enc["input_ids"])
    for key in ("token_type_ids", "mm_token_type_ids"):
        if key in enc:
            fill = families.processor_family(processor).answer_token_type if key == "token_type_ids" else 0
            enc[key] = torch.cat([enc[key], torch.full((1, len(cap)), fill)], 1)
    with torch.no_grad():
        logp = model(**enc).logits.float().log_softmax(-1)[0]
    return logp[n - 1 : n - 1 + len(cap)]


@pytest.mark.parametrize("family", tiny.FAMILIES)
def test_every_entry_point_runs_on_the_family(family, family_folders, two_images):
    from peft import PeftModel

    from groundloop import finetune
    from groundloop.genrm import critique
    from groundloop.genrm import judge as genrm
    from groundloop.genrm.judge import GenRM
    from groundloop.sampling import HFSampler
    from groundloop.svp import scoring
    from groundloop.vimar.value import ValueModel

    folder = family_folders(family)
    model, processor = load_vlm(folder)
    table = families.family_of(model)
    assert table is families.FAMILIES[family] and families.processor_family(processor) is table
    sampler = HFSampler(model, processor, max_new_tokens=6, seed=0)
    ims = list(two_images)

    prior = sampler.generate(ims, [prompts.BASE_PROMPT] * 2, n=2, temperature=1.0)
    guided = sampler.generate(ims, [prompts.grounded_prompt(GROUNDING)] * 2)
    continued = sampler.sample(ims, [prompts.BASE_PROMPT] * 2, ["A dog", "The"], [0.0, 1.0])
    assert [len(p) for p in prior] == [2, 2] and len(guided) == 2 and len(continued) == 2
    assert all(isinstance(t, str) for t in [*prior[0], *prior[1], *[g[0] for g in guided], *continued])

    # S and Delta of a padded batch equal each caption scored alone (caption tokens only)
    s, d = scoring.score_guided(model, processor, ims, [GROUNDING] * 2, CAPTIONS)
    for i, cap in enumerate(CAPTIONS):
        q = naive_caption_logprobs(model, processor, ims[i], prompts.grounded_prompt(GROUNDING), cap)
        p = naive_caption_logprobs(model, processor, ims[i], prompts.BASE_PROMPT, cap)
        ones = torch.ones(1, len(q))
        torch.testing.assert_close(torch.tensor(s[i]), scoring.s_score(q[None], p[None], ones)[0], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(
            torch.tensor(d[i]), scoring.delta_score(q[None], p[None], ones)[0], atol=1e-4, rtol=1e-4
        )

    # one prefill per image and prompt, its cache serving every caption, equals the full pass
    four = [ims[0], ims[0], ims[1], ims[1]]
    shared = scoring.score_guided(model, processor, four, [GROUNDING] * 4, CAPTIONS * 2, keys=[0, 0, 1, 1])
    full = scoring.score_guided(model, processor, four, [GROUNDING] * 4, CAPTIONS * 2, share_prefix=False)
    torch.testing.assert_close(torch.tensor(shared), torch.tensor(full), atol=1e-5, rtol=1e-5)

    # LoRA wraps only the language model's projections, learns, and reloads with PeftModel
    lora = finetune.add_lora(load_vlm(folder)[0], 4, 8, 0.0)
    wrapped = [n for n, m in lora.named_modules() if type(m).__name__ == "Linear" and hasattr(m, "lora_A")]
    assert wrapped and all(f".{table.language_model}." in n for n in wrapped), wrapped
    batch = finetune.collate(
        [finetune.build_example(processor, im, prompts.BASE_PROMPT, c) for im, c in zip(ims, CAPTIONS)], processor
    )
    lora.train()
    loss = lora(**batch).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in lora.named_parameters() if "lora_B" in n)
    with torch.no_grad():
        for n, p in lora.named_parameters():
            if "lora_B" in n:
                p.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(0))
    lora.eval()
    adapter = f"{folder}-adapter"
    lora.save_pretrained(adapter)
    reloaded = PeftModel.from_pretrained(load_vlm(folder)[0], adapter).eval()
    with torch.no_grad():
        inputs = finetune.model_inputs(batch)
        torch.testing.assert_close(reloaded(**inputs).logits, lora(**inputs).logits)

    # the value model: the prefix-cached values equal the full pass (or the full pass is used)
    value = ValueModel(model, processor, {"pool": "last"}).eval()
    torch.nn.init.normal_(value.head.weight, std=1.0)
    states = ["A red dog.", "Two cats.", "A red dog."]
    with torch.no_grad():
        shared = value.values([ims[0], ims[1], ims[1]], states)
        full = value.values([ims[0], ims[1], ims[1]], states, share_prefix=False)
    torch.testing.assert_close(torch.tensor(shared), torch.tensor(full), atol=1e-5, rtol=1e-5)

    # the judge: factored critiques over COCO claims, free-written critiques, and its training loss
    coco = vocab.get("coco")
    factored = GenRM(model, processor, critique="factored", vocab=coco, max_new_tokens=6, seed=0)
    (j,) = factored.judge(ims[:1], [prompts.BASE_PROMPT], ["A dog on a table."], ["Two cats."])
    assert "dog" in j.thought and "two cats" in j.thought and j.verdict in ("A", "B")
    free = GenRM(model, processor, critique="free", max_new_tokens=6, seed=0)
    (j,) = free.judge(ims[1:], [prompts.BASE_PROMPT], ["A dog."], ["A cat."])
    assert torch.isfinite(torch.tensor([j.logp_a, j.logp_b])).all()
    ex = genrm.example(
        processor, ims[0], critique.judge_prompt(prompts.BASE_PROMPT, "A dog.", "A cat."), "A: dog yes. B: cat no.", "A"
    )
    rm_batch = genrm.collate([ex], processor)
    assert torch.isfinite(genrm.loss(model, rm_batch, genrm.label_ids(processor.tokenizer), lam=1.0))


@pytest.mark.parametrize("family", tiny.FAMILIES)
def test_generation_stops_at_the_familys_end_of_turn(family, family_folders):
    _, processor = load_vlm(family_folders(family))
    ends = families.end_ids(processor)
    expected = tiny.NOTES[family]["end_of_turn"]
    assert processor.tokenizer.convert_tokens_to_ids(expected) in ends


def test_a_half_precision_model_gets_its_inputs_in_its_dtype(two_images):
    """`families.to_model` puts a batch on the model's device and dtype (ids stay integers), and
    a bfloat16 VLM samples and scores through it."""
    from groundloop.sampling import HFSampler
    from groundloop.svp import scoring

    model, processor = load_vlm("shapesworld/vlm", dtype=torch.bfloat16)
    assert next(model.parameters()).dtype == torch.bfloat16
    enc = families.to_model(families.prompts_batch(processor, two_images, [prompts.BASE_PROMPT] * 2), model)
    assert enc["pixel_values"].dtype == torch.bfloat16 and enc["input_ids"].dtype == torch.long
    (caption,) = HFSampler(model, processor, max_new_tokens=8).generate(two_images[:1], [prompts.BASE_PROMPT])
    s, d = scoring.score_guided(model, processor, two_images[:1], [GROUNDING], ["A small red circle."])
    assert isinstance(caption[0], str) and torch.isfinite(torch.tensor(s + d)).all()


@pytest.mark.parametrize("family", ["llava_next", "qwen2_vl"])
def test_grounded_attention_refuses_tiled_image_layouts(family, family_folders, two_images):
    from groundloop import finetune

    model, processor = load_vlm(family_folders(family))
    with pytest.raises(ValueError, match="one square grid"):
        finetune.grounded_example(
            processor,
            two_images[0],
            "Is there a dog?",
            "Yes.",
            "dog",
            [(0.1, 0.1, 0.5, 0.5)],
            families.image_token_id(model),
        )
