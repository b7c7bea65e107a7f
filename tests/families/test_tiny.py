"""Each tiny family builds, reloads through the Auto classes, processes a batch, runs forward and generate,
and behaves as its entry in ``tiny.NOTES`` says."""

from __future__ import annotations

import re

import pytest
import torch

from tests.families import tiny

IMAGE_SIZES = ((40, 30), (24, 48))  # (width, height): two different-size images
QUESTIONS = ("Describe the image.", "Is there a red circle? Answer yes or no.")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from transformers.utils import logging

    logging.disable_progress_bar()
    return tmp_path_factory.mktemp("tiny_families")


@pytest.fixture(scope="module")
def images():
    from PIL import Image

    return [Image.new("RGB", size, colour) for size, colour in zip(IMAGE_SIZES, ((200, 30, 30), (30, 200, 30)))]


def _load(folder):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    tiny.allow_processors_without_torchvision()
    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder).eval()
    return processor, model


def _messages(question, answer=None):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    if answer is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages


def _prompts(family, processor):
    if family == "paligemma":
        return list(QUESTIONS)
    return [processor.apply_chat_template(_messages(q), add_generation_prompt=True) for q in QUESTIONS]


def test_families_listed():
    assert set(tiny.FAMILIES) == set(tiny.NOTES)
    assert len(tiny.FAMILIES) == 9


def test_build_is_deterministic(tmp_path):
    from safetensors.torch import load_file

    a = load_file(tiny.build("llava", tmp_path / "a") / "model.safetensors")
    b = load_file(tiny.build("llava", tmp_path / "b") / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "a" / "tokenizer.json").read_text() == (tmp_path / "b" / "tokenizer.json").read_text()


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # inside PaliGemmaProcessor
@pytest.mark.parametrize("family", tiny.FAMILIES)
def test_family(family, root, images):
    if family == "smolvlm":
        pytest.importorskip("num2words", reason="SmolVLMProcessor needs the num2words package")
    from transformers.utils import is_torchvision_available

    notes = tiny.NOTES[family]
    folder = tiny.build(family, root / family)
    assert folder == root / family
    processor, model = _load(folder)
    patched = type(processor).__dict__.get("_video_free", False)
    assert patched == (notes["needs_video_free_patch"] and not is_torchvision_available())
    tok = processor.tokenizer
    assert tok.padding_side == "left"
    assert type(model).__name__ == notes["model_class"]

    # tokenizer: the verdict labels and yes/no words are single tokens, any text round-trips
    for word in tiny.SINGLE_TOKENS:
        assert len(tok(word, add_special_tokens=False)["input_ids"]) == 1, word
    text = "A zebra, 3 quokkas & one Ünïcode star!"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    assert (tok("x")["input_ids"][0] == tok.bos_token_id) == notes["tokenizer_adds_bos"]

    # chat template: generation prompt and continue_final_message
    prompts = _prompts(family, processor)
    if family == "paligemma":
        assert processor.chat_template is None
    else:
        assert prompts[0].endswith(notes["generation_prompt_suffix"])
        starts = bool(tok.bos_token) and prompts[0].startswith(tok.bos_token)
        assert starts == notes["chat_starts_with_bos"]
        cont = processor.apply_chat_template(_messages("Q?", "A red"), continue_final_message=True)
        assert cont.endswith("A red"), cont
        assert notes["image_placeholder"] in prompts[0]

    # processor: a batch of 2 prompts with 2 different-size images, nested and flat
    nested = processor(images=[[im] for im in images], text=prompts, padding=True, return_tensors="pt")
    assert {k: tuple(v.shape) for k, v in nested.items()} == notes["tensors"]
    try:
        flat = processor(images=list(images), text=prompts, padding=True, return_tensors="pt")
    except ValueError:
        flat = None
    assert (flat is None) == notes["nested_images_required"]
    if flat is not None:
        assert all(torch.equal(flat[k], nested[k]) for k in nested)
    if family == "paligemma":  # an explicit <image> prefix gives the same tokens (and no warning)
        explicit = processor(
            images=list(images), text=["<image>" + p for p in prompts], padding=True, return_tensors="pt"
        )
        assert torch.equal(explicit["input_ids"], nested["input_ids"])
    enc = nested
    assert int(enc["input_ids"].max()) < model.config.text_config.vocab_size
    assert (enc["input_ids"][:, -1] != tok.pad_token_id).all()  # left padding
    image_token_id = getattr(model.config, notes["image_token_attr"])
    assert image_token_id == tok.convert_tokens_to_ids(notes["image_token"])
    assert image_token_id == model.config.image_token_id  # the common spelling works for every family
    n_image_tokens = (enc["input_ids"] == image_token_id).sum(dim=1).tolist()
    assert n_image_tokens == notes["image_tokens_per_prompt"]

    hidden = model.config.text_config.hidden_size
    assert hidden == notes["hidden_size"]
    with torch.no_grad():
        out = model(**enc)
        assert tuple(out.logits.shape) == (2, enc["input_ids"].shape[1], model.config.text_config.vocab_size)
        assert torch.isfinite(out.logits).all()
        base = model.model(**enc)
        assert tuple(base.last_hidden_state.shape) == (2, enc["input_ids"].shape[1], hidden)
        generated = model.generate(**enc, max_new_tokens=5)
    assert generated.shape[0] == 2 and 1 <= generated.shape[1] - enc["input_ids"].shape[1] <= 5
    assert len(tok.batch_decode(generated[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)) == 2

    # end of turn: a special token, and generation stops on it
    end_id = tok.convert_tokens_to_ids(notes["end_of_turn"])
    assert end_id is not None and end_id != tok.unk_token_id
    eos = model.generation_config.eos_token_id
    assert end_id in (eos if isinstance(eos, list) else [eos])

    # LoRA targets: the regexes match exactly the language model's attention / MLP projections
    names = [n for n, _ in model.named_modules()]
    lm_prefix = notes["language_model"] + "."
    decoder_name = next(n for n, m in model.named_modules() if m is model.get_decoder())
    assert decoder_name + "." == lm_prefix
    projections = (
        ("lora_regex", tiny.LM_ATTN_REGEX, ("q_proj", "k_proj", "v_proj", "o_proj")),
        ("mlp_regex", tiny.LM_MLP_REGEX, ("gate_proj", "up_proj", "down_proj")),
    )
    for key, universal, leaves in projections:
        wanted = {n for n in names if n.startswith(lm_prefix) and n.rsplit(".", 1)[-1] in leaves}
        assert len(wanted) == len(leaves) * tiny.TEXT_LAYERS
        assert {n for n in names if re.fullmatch(notes[key], n)} == wanted
        assert {n for n in names if re.fullmatch(universal, n)} == wanted
    plain = {n for n in names if n.rsplit(".", 1)[-1] in ("q_proj", "v_proj")}
    assert bool(plain - {n for n in names if n.startswith(lm_prefix)}) == notes["plain_q_v_hits_vision"]
