"""Building the ShapesWorld models from configs: tokenizer, processors, CLIP and LLaVA.

Everything here produces ordinary transformers objects, so the shipped folders load with
`AutoModelForImageTextToText` / `CLIPModel` / `AutoProcessor` like any hub checkpoint.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import cast

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    CLIPConfig,
    CLIPImageProcessorPil,
    CLIPModel,
    CLIPProcessor,
    CLIPTextConfig,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
)

from groundloop import prompts
from groundloop.worlds import shapes as world

IMAGE_TOKEN = "<image>"
SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "</s>", IMAGE_TOKEN, "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
PATCH = 12
N_IMAGE_TOKENS = (world.IMAGE_SIZE // PATCH) ** 2

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages[0]['role'] != 'system' %}<|system|>\n" + prompts.SYSTEM_PROMPT + "<|end|>\n{% endif %}"
    "{% for m in messages %}<|{{ m['role'] }}|>\n"
    "{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>\n{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def corpus(n_scenes: int = 3000, seed: int = 0) -> Iterable[str]:
    """Text the tokenizer should encode compactly: captions, prompts, grounding, questions."""
    rng = random.Random(seed)
    yield prompts.SYSTEM_PROMPT
    yield prompts.BASE_PROMPT
    yield prompts.grounded_prompt("red circle [0.10, 0.20, 0.30, 0.40]")
    yield " ".join(f"{i / 100:.2f}" for i in range(101))
    for split in ("train", "test"):
        for objects, _ in world.scenes(split, n_scenes // 2, seed):
            yield world.caption(objects)
            yield world.short_caption(objects)
            for o in objects:
                yield world.object_sentence(o)
                yield prompts.yes_no_question(o.name) + " Yes. No."
                b = [v / world.IMAGE_SIZE for v in o.box]
                yield f"{o.size} {o.name} [{b[0]:.2f}, {b[1]:.2f}, {b[2]:.2f}, {b[3]:.2f}]"
    for c, s in world.object_types():
        yield f"{rng.choice(world.SIZES)} {c} {s}"


def build_tokenizer(
    vocab_size: int = 640, padding_side: str = "left", add_eos: bool = False
) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus(), trainer)
    if add_eos:  # CLIP pools at the first EOS, so its tokenizer must append one
        eos = tok.token_to_id("</s>")
        tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", eos)])
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]  # untyped in transformers
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side=padding_side,
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        additional_special_tokens=SPECIAL_TOKENS[4:],
    )


def image_processor() -> CLIPImageProcessorPil:
    s = world.IMAGE_SIZE
    return CLIPImageProcessorPil(size={"shortest_edge": s}, crop_size={"height": s, "width": s})


def pixel_values(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> normalized (B, 3, H, W), exactly as `image_processor()` does."""
    proc = image_processor()
    mean = torch.tensor(proc.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(proc.image_std).view(1, 3, 1, 1)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() * proc.rescale_factor
    return (x - mean) / std


def vision_config(hidden: int = 128, layers: int = 4) -> CLIPVisionConfig:
    return CLIPVisionConfig(
        hidden_size=hidden,
        intermediate_size=hidden * 4,
        num_hidden_layers=layers,
        num_attention_heads=4,
        image_size=world.IMAGE_SIZE,
        patch_size=PATCH,
        projection_dim=hidden,
    )


def build_clip(tokenizer: PreTrainedTokenizerFast, hidden: int = 128) -> tuple[CLIPModel, CLIPProcessor]:
    text = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 4,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=48,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    cfg = CLIPConfig(text_config=text.to_dict(), vision_config=vision_config(hidden).to_dict(), projection_dim=hidden)
    model = CLIPModel(cfg)
    processor = CLIPProcessor(  # type: ignore[no-untyped-call]  # untyped in transformers
        image_processor=image_processor(), tokenizer=tokenizer
    )
    return model, processor


def build_vlm(
    tokenizer: PreTrainedTokenizerFast,
    vision_hidden: int = 128,
    vision_layers: int = 4,
    lm_hidden: int = 160,
    lm_layers: int = 3,
) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=lm_hidden,
        intermediate_size=lm_hidden * 3,
        num_hidden_layers=lm_layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    cfg = LlavaConfig(
        vision_config=vision_config(vision_hidden, vision_layers),
        text_config=text,
        image_token_index=cast(int, tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)),  # one token, one id
        image_seq_length=N_IMAGE_TOKENS,
        vision_feature_select_strategy="default",
        # -1: a from-scratch tower's last layer must be trained too
        vision_feature_layer=-1,
        projector_hidden_act="gelu",
    )
    cfg.pad_token_id = tokenizer.pad_token_id
    model = LlavaForConditionalGeneration(cfg)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    processor = LlavaProcessor(  # type: ignore[no-untyped-call]  # untyped in transformers
        image_processor=image_processor(),
        tokenizer=tokenizer,
        patch_size=PATCH,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    return model, processor
