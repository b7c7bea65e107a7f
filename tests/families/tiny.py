"""Tiny random-initialised VLMs of nine Hugging Face families, built offline from configs.

``build(family, folder)`` writes a model, processor, tokenizer and chat template into ``folder`` so that
``AutoModelForImageTextToText.from_pretrained(folder)`` and ``AutoProcessor.from_pretrained(folder)``
reload it. Each model has a 32-wide, 2-layer language model, a 32-wide 2-layer vision tower, 32-64 px
images and a few image tokens, so a forward pass takes milliseconds on a CPU. Builds are seeded and
deterministic.

The tokenizer is a byte-level BPE (so any text encodes) with ~500 tokens merged over common caption
words ("A", "B", "Yes", "No", "yes", "no", " yes", " no", " A", " B" are single tokens) plus each family's
real special tokens. Chat templates copy the structure of each family's real Jinja template.

Torchvision: Qwen2-VL, Qwen2.5-VL, LLaVA-OneVision and SmolVLM processors take a video processor, and every
video processor of transformers 5 needs torchvision; without it ``ProcessorMixin`` cannot even check the
argument's class, so these processors (real checkpoints included) cannot be built or loaded at all.
``allow_processors_without_torchvision()`` (called by ``build``; call it before ``AutoProcessor`` in any
process that loads these four families where torchvision is missing) makes those four processor classes
treat the video processor as absent. It does nothing when torchvision is installed.

SmolVLMProcessor also needs the ``num2words`` package (not a project dependency yet); the test skips SmolVLM
without it.

``NOTES`` (below) records, per family, what the tests measured: batch layout of images, returned tensors and
shapes, LoRA target regexes, end-of-turn token, image token id attribute, BOS behaviour.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from groundloop.models.compat import allow_processors_without_torchvision

FAMILIES: tuple[str, ...] = (
    "llava",
    "llava_next",
    "llava_onevision",
    "qwen2_vl",
    "qwen2_5_vl",
    "idefics3",
    "smolvlm",
    "paligemma",
    "gemma3",
)

SEED = 0
HIDDEN = 32  # text and vision width
TEXT_LAYERS = 2
VISION_LAYERS = 2
VOCAB = 512  # BPE vocabulary incl. special tokens (PaliGemma adds its 1152 <locXXXX>/<segXXX> tokens on top)

# LoRA targets valid for all nine families: the language model's attention / MLP projections only. Plain
# ["q_proj", "v_proj"] also hit the vision tower of every family but Qwen2-VL/Qwen2.5-VL (fused "qkv" there), and
# plain "down_proj" etc. hit Qwen2.5-VL's vision MLP.
LM_ATTN_REGEX = r".*\.(language_model|text_model)\.layers\.\d+\.self_attn\.(q_proj|k_proj|v_proj|o_proj)"
LM_MLP_REGEX = r".*\.(language_model|text_model)\.layers\.\d+\.mlp\.(gate_proj|up_proj|down_proj)"
_ATTN = r".*{}.*\.(q_proj|k_proj|v_proj|o_proj)"
_MLP = r".*{}.*\.(gate_proj|up_proj|down_proj)"


def _note(**kw: Any) -> dict[str, Any]:
    lm = kw["language_model"].rsplit(".", 1)[-1]
    base = dict(
        lora_regex=_ATTN.format(lm),
        mlp_regex=_MLP.format(lm),
        hidden_size=HIDDEN,
        base_last_hidden_state=True,
        plain_q_v_hits_vision=True,
        needs_video_free_patch=False,
    )
    base.update(kw)
    return base


# Measured on these builds by tests/families/test_tiny.py, which asserts every entry. ``tensors`` are the shapes
# ``processor(images=[[im1], [im2]], text=[p1, p2], padding=True, return_tensors="pt")`` returns for the test's two
# chat prompts ("Describe the image." / "Is there a red circle? Answer yes or no.") and images of 40x30 and 24x48 px
# (W x H); the sequence length T is the second number of input_ids.
#   nested_images_required: a flat ``images=[im1, im2]`` for 2 prompts raises (SmolVLM/Gemma3 read a flat list as
#       2 images of ONE prompt); elsewhere flat and nested give identical tensors.
#   language_model: module path of the text decoder (``model.get_decoder()``); lora_regex / mlp_regex match only its
#       q/k/v/o and gate/up/down projections (``re.fullmatch`` on ``named_modules()`` names, as peft does).
#   end_of_turn: token that ends an assistant turn (in generation_config.eos_token_id here).
#   image_token_attr: the config's own field for the image token id; ``config.image_token_id`` works for all nine.
#   image_placeholder: what the prompt text carries per image (the processor expands it to image_token x N).
#   chat_starts_with_bos: rendered chat text begins with tokenizer.bos_token (None: no chat template).
#   tokenizer_adds_bos: ``tokenizer(text)`` prepends BOS. Idefics3 and Gemma3 do both, so processor(text=chat) gives
#       two BOS tokens, as the real checkpoints do; pass add_special_tokens=False to avoid it.
NOTES: dict[str, dict[str, Any]] = {
    "llava": _note(
        model_class="LlavaForConditionalGeneration",
        nested_images_required=False,
        tensors={"input_ids": (2, 47), "attention_mask": (2, 47), "pixel_values": (2, 3, 32, 32)},
        language_model="model.language_model",
        end_of_turn="</s>",  # the template writes nothing after an assistant turn: the model emits eos
        image_token_attr="image_token_index",
        image_token="<image>",
        image_placeholder="<image>",
        image_tokens_per_prompt=[16, 16],
        generation_prompt_suffix="ASSISTANT:",
        chat_starts_with_bos=False,
        tokenizer_adds_bos=True,
    ),
    "llava_next": _note(
        model_class="LlavaNextForConditionalGeneration",
        nested_images_required=False,
        tensors={
            "input_ids": (2, 86),
            "attention_mask": (2, 86),
            "pixel_values": (2, 3, 3, 32, 32),  # (B, 1 base + anyres tiles, C, H, W)
            "image_sizes": (2, 2),
        },
        language_model="model.language_model",
        end_of_turn="</s>",
        image_token_attr="image_token_index",
        image_token="<image>",
        image_placeholder="<image>",
        image_tokens_per_prompt=[44, 56],
        generation_prompt_suffix=" [/INST]",  # the template has no separate generation prompt
        chat_starts_with_bos=False,
        tokenizer_adds_bos=True,
    ),
    "llava_onevision": _note(
        model_class="LlavaOnevisionForConditionalGeneration",
        nested_images_required=False,
        tensors={
            "input_ids": (2, 79),
            "attention_mask": (2, 79),
            "pixel_values": (2, 3, 3, 32, 32),
            "image_sizes": (2, 2),
            "batch_num_images": (2,),
        },
        language_model="model.language_model",
        end_of_turn="<|im_end|>",
        image_token_attr="image_token_index",
        image_token="<image>",
        image_placeholder="<image>",
        image_tokens_per_prompt=[44, 56],
        generation_prompt_suffix="<|im_start|>assistant\n",
        chat_starts_with_bos=False,  # no bos_token at all
        tokenizer_adds_bos=False,
        needs_video_free_patch=True,
    ),
    "qwen2_vl": _note(
        model_class="Qwen2VLForConditionalGeneration",
        nested_images_required=False,
        tensors={
            "input_ids": (2, 52),
            "attention_mask": (2, 52),
            "mm_token_type_ids": (2, 52),
            "pixel_values": (40, 384),  # (sum of patches over the batch, C * temporal 2 * patch 8 * 8)
            "image_grid_thw": (2, 3),
        },
        language_model="model.language_model",
        end_of_turn="<|im_end|>",
        image_token_attr="image_token_id",
        image_token="<|image_pad|>",
        image_placeholder="<|image_pad|>",  # inside <|vision_start|>...<|vision_end|>
        image_tokens_per_prompt=[4, 6],
        generation_prompt_suffix="<|im_start|>assistant\n",
        chat_starts_with_bos=False,  # no bos_token at all
        tokenizer_adds_bos=False,
        plain_q_v_hits_vision=False,  # the vision blocks use a fused attn.qkv
        needs_video_free_patch=True,
    ),
    "qwen2_5_vl": _note(
        model_class="Qwen2_5_VLForConditionalGeneration",
        nested_images_required=False,
        tensors={
            "input_ids": (2, 52),
            "attention_mask": (2, 52),
            "mm_token_type_ids": (2, 52),
            "pixel_values": (40, 384),
            "image_grid_thw": (2, 3),
        },
        language_model="model.language_model",
        end_of_turn="<|im_end|>",
        image_token_attr="image_token_id",
        image_token="<|image_pad|>",
        image_placeholder="<|image_pad|>",
        image_tokens_per_prompt=[4, 6],
        generation_prompt_suffix="<|im_start|>assistant\n",
        chat_starts_with_bos=False,
        tokenizer_adds_bos=False,
        plain_q_v_hits_vision=False,  # fused attn.qkv, but the vision MLP has gate/up/down_proj
        needs_video_free_patch=True,
    ),
    "idefics3": _note(
        model_class="Idefics3ForConditionalGeneration",
        nested_images_required=False,  # a flat list is split by counting <image> per prompt
        tensors={
            "input_ids": (2, 48),
            "attention_mask": (2, 48),
            "pixel_values": (2, 5, 3, 32, 32),  # (B, max tiles incl. global image, C, H, W), zero-padded
            "pixel_attention_mask": (2, 5, 32, 32),
        },
        language_model="model.text_model",
        end_of_turn="<end_of_utterance>",
        image_token_attr="image_token_id",
        image_token="<image>",
        image_placeholder="<image>",
        image_tokens_per_prompt=[20, 12],  # 4 per tile: 2x2 tiles + global, 2x1 tiles + global
        generation_prompt_suffix="Assistant:",
        chat_starts_with_bos=True,
        tokenizer_adds_bos=True,
    ),
    "smolvlm": _note(
        model_class="SmolVLMForConditionalGeneration",
        nested_images_required=True,
        tensors={
            "input_ids": (2, 47),
            "attention_mask": (2, 47),
            "pixel_values": (2, 5, 3, 32, 32),
            "pixel_attention_mask": (2, 5, 32, 32),
        },
        language_model="model.text_model",
        end_of_turn="<end_of_utterance>",
        image_token_attr="image_token_id",
        image_token="<image>",
        image_placeholder="<image>",
        image_tokens_per_prompt=[20, 12],
        generation_prompt_suffix="Assistant:",
        chat_starts_with_bos=True,  # its bos_token is <|im_start|>
        tokenizer_adds_bos=False,
        needs_video_free_patch=True,
    ),
    "paligemma": _note(
        model_class="PaliGemmaForConditionalGeneration",
        nested_images_required=False,
        tensors={
            "input_ids": (2, 31),
            "token_type_ids": (2, 31),
            "attention_mask": (2, 31),
            "pixel_values": (2, 3, 32, 32),
            "labels": (2, 31),  # prompt-only labels (-100 where token_type_ids == 0); drop them for scoring
        },
        language_model="model.language_model",
        end_of_turn="<eos>",  # no chat: processor(suffix=...) appends eos to the target
        image_token_attr="image_token_index",
        image_token="<image>",
        image_placeholder=None,  # plain text prompt: the processor builds <image>*16 + <bos> + prompt + "\n"
        image_tokens_per_prompt=[16, 16],
        generation_prompt_suffix=None,
        chat_starts_with_bos=None,  # no chat template
        tokenizer_adds_bos=False,  # PaliGemmaProcessor turns add_bos off and inserts <bos> itself
    ),
    "gemma3": _note(
        model_class="Gemma3ForConditionalGeneration",
        nested_images_required=True,
        tensors={
            "input_ids": (2, 33),
            "attention_mask": (2, 33),
            "pixel_values": (2, 3, 32, 32),
            "token_type_ids": (2, 33),  # 1 on image tokens; required by the model in training mode
        },
        language_model="model.language_model",
        end_of_turn="<end_of_turn>",
        image_token_attr="image_token_index",
        image_token="<image_soft_token>",
        image_placeholder="<start_of_image>",  # expanded to \n\n<start_of_image><image_soft_token>*4<end_of_image>\n\n
        image_tokens_per_prompt=[4, 4],
        generation_prompt_suffix="<start_of_turn>model\n",
        chat_starts_with_bos=True,
        tokenizer_adds_bos=True,
    ),
}

# --------------------------------------------------------------------------------------------------------------------
# tokenizer
# --------------------------------------------------------------------------------------------------------------------

_WORDS = (
    "a an the of and or in on at to with is are was were it its this that there here image picture photo shows show "
    "see red green blue yellow black white orange purple pink brown gray circle square triangle star shape shapes "
    "object objects small large big left right top bottom above below next near one two three four five many some "
    "not Answer answer question caption describe what which where how color box dog cat man woman person car tree "
    "sky table user assistant system model"
).split()
# must each be a single token
SINGLE_TOKENS = ("A", "B", "Yes", "No", "yes", "no", " yes", " no", " Yes", " No", " A", " B")


def make_tokenizer(
    special_tokens: list[str],
    *,
    bos: str | None = None,
    eos: str | None = None,
    pad: str | None = None,
    unk: str | None = None,
    add_bos: bool = False,
    extra_special_tokens: dict[str, str] | None = None,
    chat_template: str | None = None,
):
    """A byte-level BPE tokenizer over caption words, wrapped in ``PreTrainedTokenizerFast`` (left padding)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    corpus = list(SINGLE_TOKENS) * 20
    for w in _WORDS:
        corpus += [w, " " + w, " " + w, w.capitalize(), " " + w.capitalize()]
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[AddedToken(s, special=True, normalized=False) for s in special_tokens],
        show_progress=False,
        min_frequency=2,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    if add_bos:
        bos_id = tok.token_to_id(bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    kwargs: dict[str, Any] = {"tokenizer_object": tok, "padding_side": "left"}
    for key, value in (("bos_token", bos), ("eos_token", eos), ("pad_token", pad), ("unk_token", unk)):
        if value is not None:
            kwargs[key] = value
    if extra_special_tokens:
        kwargs["extra_special_tokens"] = extra_special_tokens
    tokenizer = PreTrainedTokenizerFast(**kwargs)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer


# --------------------------------------------------------------------------------------------------------------------
# chat templates (structure of each family's real template)
# --------------------------------------------------------------------------------------------------------------------

# llava-hf/llava-1.5-*-hf: no BOS in the template (the tokenizer adds it), images first, then text.
LLAVA_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] + ' ' }}{% else %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' ' }}"
    "{% endfor %}"
    "{% else %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' ' }}{% endgeneration %}{% endfor %}"
    "{% endif %}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

# llava-hf/llava-v1.6-mistral-7b-hf: "[INST] <image>\n... [/INST]"; it always ends a user turn with " [/INST]"
# (no separate generation prompt). The real template closes assistant turns with a mistyped "<\s>"; eos is used here.
LLAVA_NEXT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{{ '<<SYS>>\n' + (message['content'] if message['content'] is string else message['content'][0]['text'])"
    " + '\n<</SYS>>\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ '[INST] ' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}"
    "{% endif %}{{ ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ ' ' + (message['content'] if message['content'] is string else message['content'][0]['text'])"
    " + '</s> ' }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}"
    "{% endfor %}"
)

# llava-hf/llava-onevision-qwen2-*-ov-hf: ChatML, "<|im_start|>user <image>\n...<|im_end|>\n".
ONEVISION_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + ' ' }}"
    "{% if message['content'] is string %}{{ '\n' + message['content'] }}{% else %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>' }}{% endfor %}"
    "{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ '\n' + content['text'] }}"
    "{% endfor %}"
    "{% else %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ '\n' + content['text'] }}{% endgeneration %}{% endfor %}"
    "{% endif %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Qwen/Qwen2-VL-*-Instruct and Qwen2.5-VL: ChatML with a default system prompt and vision_start/pad/end.
QWEN2_VL_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# HuggingFaceM4/Idefics3-8B-Llama3: "<|begin_of_text|>User:<image>...<end_of_utterance>\nAssistant:".
_IDEFICS_BODY = (
    "{% for message in messages %}"
    "{{ message['role'] | capitalize }}"
    "{% if message['content'] is string %}{{ ': ' + message['content'] }}{% else %}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for line in message['content'] %}"
    "{% if line['type'] == 'text' %}{{ line['text'] }}{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}"
    "{% endfor %}{% endif %}"
    "<end_of_utterance>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
IDEFICS3_TEMPLATE = "<|begin_of_text|>" + _IDEFICS_BODY
# HuggingFaceTB/SmolVLM-Instruct: same layout, starting with its BOS "<|im_start|>".
SMOLVLM_TEMPLATE = "<|im_start|>" + _IDEFICS_BODY

# google/gemma-3-*-it: "<bos><start_of_turn>user\n...<end_of_turn>\n<start_of_turn>model\n".
GEMMA3_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- if messages[0]['content'] is string -%}{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- else -%}{%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}{%- endif -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{%- endif -%}"
    "{%- if (message['role'] == 'assistant') -%}{%- set role = 'model' -%}"
    "{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{%- if message['content'] is string -%}{{ message['content'] | trim }}"
    "{%- elif message['content'] is iterable -%}"
    "{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{ '<start_of_image>' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] | trim }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- else -%}{{ raise_exception('Invalid content type') }}{%- endif -%}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)

_ROW_COL = [f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6)]
_QWEN_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]


# --------------------------------------------------------------------------------------------------------------------
# torchvision-free processors
# --------------------------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------------------------
# configs
# --------------------------------------------------------------------------------------------------------------------


def _video_processor(name: str, **kwargs: Any):
    """The family's video processor where torchvision is installed, else None (see allow_processors_without_...)."""
    from transformers.utils import is_torchvision_available

    if not is_torchvision_available():
        return None
    import transformers

    return getattr(transformers, name)(**kwargs)


def _text_kwargs(tokenizer, **extra) -> dict[str, Any]:
    kw = dict(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=TEXT_LAYERS,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    kw.update(extra)
    return kw


def _vit_kwargs(image_size: int, patch_size: int = 8, **extra) -> dict[str, Any]:
    kw = dict(
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=VISION_LAYERS,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=patch_size,
    )
    kw.update(extra)
    return kw


def _llava():
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tok = make_tokenizer(
        ["<unk>", "<s>", "</s>", "<pad>", "<image>"],
        bos="<s>",
        eos="</s>",
        pad="<pad>",
        unk="<unk>",
        add_bos=True,
        extra_special_tokens={"image_token": "<image>"},
        chat_template=LLAVA_TEMPLATE,
    )
    size = 32
    ip = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    proc = LlavaProcessor(
        image_processor=ip,
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_TEMPLATE,
    )
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(**_vit_kwargs(size), projection_dim=HIDDEN),
        text_config=LlamaConfig(**_text_kwargs(tok)),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        image_seq_length=(size // 8) ** 2,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        projector_hidden_act="gelu",
    )
    return LlavaForConditionalGeneration(cfg), proc, tok.eos_token


def _llava_next():
    from transformers import (
        CLIPVisionConfig,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessorPil,
        LlavaNextProcessor,
        MistralConfig,
    )

    tok = make_tokenizer(
        ["<unk>", "<s>", "</s>", "<image>", "<pad>"],
        bos="<s>",
        eos="</s>",
        pad="<pad>",
        unk="<unk>",
        add_bos=True,
        extra_special_tokens={"image_token": "<image>"},
        chat_template=LLAVA_NEXT_TEMPLATE,
    )
    size = 32
    pinpoints = [[32, 64], [64, 32], [64, 64]]
    ip = LlavaNextImageProcessorPil(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}, image_grid_pinpoints=pinpoints
    )
    proc = LlavaNextProcessor(
        image_processor=ip,
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_NEXT_TEMPLATE,
    )
    cfg = LlavaNextConfig(
        vision_config=CLIPVisionConfig(**_vit_kwargs(size), projection_dim=HIDDEN),
        text_config=MistralConfig(**_text_kwargs(tok, sliding_window=None, head_dim=HIDDEN // 2)),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=pinpoints,
        image_seq_length=(size // 8) ** 2,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        projector_hidden_act="gelu",
    )
    return LlavaNextForConditionalGeneration(cfg), proc, tok.eos_token


def _llava_onevision():
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessorPil,
        LlavaOnevisionProcessor,
        Qwen2Config,
        SiglipVisionConfig,
    )

    tok = make_tokenizer(
        [*_QWEN_SPECIALS[:3], "<image>", "<video>"],
        eos="<|im_end|>",
        pad="<|endoftext|>",
        extra_special_tokens={"image_token": "<image>", "video_token": "<video>"},
        chat_template=ONEVISION_TEMPLATE,
    )
    size = 32
    pinpoints = [[32, 32], [32, 64], [64, 32], [64, 64]]
    ip = LlavaOnevisionImageProcessorPil(size={"height": size, "width": size}, image_grid_pinpoints=pinpoints)
    proc = LlavaOnevisionProcessor(
        image_processor=ip,
        tokenizer=tok,
        video_processor=_video_processor(
            "LlavaOnevisionVideoProcessor", size={"height": size, "width": size}, do_convert_rgb=True
        ),
        num_image_tokens=(size // 8) ** 2,
        vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_9",
        chat_template=ONEVISION_TEMPLATE,
    )
    cfg = LlavaOnevisionConfig(
        vision_config=SiglipVisionConfig(**_vit_kwargs(size)),
        text_config=Qwen2Config(**_text_kwargs(tok, bos_token_id=None)),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        video_token_index=tok.convert_tokens_to_ids("<video>"),
        image_grid_pinpoints=pinpoints,
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        vision_aspect_ratio="anyres_max_9",
    )
    return LlavaOnevisionForConditionalGeneration(cfg), proc, "<|im_end|>"


def _qwen_vl(v25: bool):
    from transformers import Qwen2VLImageProcessorPil

    if v25:
        from transformers import (
            Qwen2_5_VLConfig as Config,
        )
        from transformers import (
            Qwen2_5_VLForConditionalGeneration as Model,
        )
        from transformers import (
            Qwen2_5_VLProcessor as Processor,
        )
        from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import (
            Qwen2_5_VLTextConfig as TextConfig,
        )
        from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import (
            Qwen2_5_VLVisionConfig as VisionConfig,
        )
    else:
        from transformers import Qwen2VLConfig as Config
        from transformers import Qwen2VLForConditionalGeneration as Model
        from transformers import Qwen2VLProcessor as Processor
        from transformers.models.qwen2_vl.configuration_qwen2_vl import Qwen2VLTextConfig as TextConfig
        from transformers.models.qwen2_vl.configuration_qwen2_vl import Qwen2VLVisionConfig as VisionConfig

    tok = make_tokenizer(
        _QWEN_SPECIALS,
        eos="<|im_end|>",
        pad="<|endoftext|>",
        chat_template=QWEN2_VL_TEMPLATE,
    )
    patch, merge = 8, 2
    factor = patch * merge
    ip = Qwen2VLImageProcessorPil(
        patch_size=patch,
        merge_size=merge,
        temporal_patch_size=2,
        size={"shortest_edge": factor * factor, "longest_edge": 3 * factor * 3 * factor},
    )
    vp = _video_processor(
        "Qwen2VLVideoProcessor",
        patch_size=patch,
        merge_size=merge,
        temporal_patch_size=2,
        size={"shortest_edge": factor * factor, "longest_edge": 4 * 3 * factor * 3 * factor},
    )
    proc = Processor(image_processor=ip, tokenizer=tok, video_processor=vp, chat_template=QWEN2_VL_TEMPLATE)
    head_dim = HIDDEN // 2
    text = TextConfig(
        **_text_kwargs(
            tok,
            bos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        )
    )
    assert sum(text.rope_parameters["mrope_section"]) * 2 == head_dim
    if v25:
        vision = VisionConfig(
            depth=VISION_LAYERS,
            hidden_size=HIDDEN,
            intermediate_size=2 * HIDDEN,
            num_heads=2,
            out_hidden_size=HIDDEN,
            patch_size=patch,
            spatial_merge_size=merge,
            temporal_patch_size=2,
            window_size=2 * factor,
            fullatt_block_indexes=[VISION_LAYERS - 1],
        )
    else:
        vision = VisionConfig(
            depth=VISION_LAYERS,
            embed_dim=HIDDEN,
            hidden_size=HIDDEN,
            mlp_ratio=2,
            num_heads=2,
            patch_size=patch,
            spatial_merge_size=merge,
            temporal_patch_size=2,
        )
    cfg = Config(
        text_config=text,
        vision_config=vision,
        image_token_id=tok.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tok.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tok.convert_tokens_to_ids("<|vision_end|>"),
    )
    return Model(cfg), proc, "<|im_end|>"


def _idefics3():
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessorPil,
        Idefics3Processor,
        LlamaConfig,
    )
    from transformers.models.idefics3.configuration_idefics3 import Idefics3VisionConfig

    tok = make_tokenizer(
        [
            "<|begin_of_text|>",
            "<|end_of_text|>",
            "<|finetune_right_pad_id|>",
            "<fake_token_around_image>",
            "<image>",
            "<end_of_utterance>",
            "<global-img>",
            *_ROW_COL,
        ],
        bos="<|begin_of_text|>",
        eos="<|end_of_text|>",
        pad="<|finetune_right_pad_id|>",
        add_bos=True,
        chat_template=IDEFICS3_TEMPLATE,
    )
    size, patch, scale = 32, 8, 2
    seq = (size // patch) ** 2 // scale**2
    ip = Idefics3ImageProcessorPil(
        size={"longest_edge": 2 * size}, max_image_size={"longest_edge": size}, do_image_splitting=True
    )
    proc = Idefics3Processor(image_processor=ip, tokenizer=tok, image_seq_len=seq, chat_template=IDEFICS3_TEMPLATE)
    cfg = Idefics3Config(
        vision_config=Idefics3VisionConfig(**_vit_kwargs(size, patch)),
        text_config=LlamaConfig(**_text_kwargs(tok)),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        scale_factor=scale,
        pad_token_id=tok.pad_token_id,
    )
    return Idefics3ForConditionalGeneration(cfg), proc, "<end_of_utterance>"


def _smolvlm():
    from transformers import (
        LlamaConfig,
        SmolVLMConfig,
        SmolVLMForConditionalGeneration,
        SmolVLMImageProcessorPil,
        SmolVLMProcessor,
    )
    from transformers.models.smolvlm.configuration_smolvlm import SmolVLMVisionConfig

    tok = make_tokenizer(
        [
            "<|endoftext|>",
            "<|im_start|>",
            "<|im_end|>",
            "<fake_token_around_image>",
            "<image>",
            "<end_of_utterance>",
            "<global-img>",
            *_ROW_COL,
        ],
        bos="<|im_start|>",
        eos="<end_of_utterance>",
        pad="<|im_end|>",
        unk="<|endoftext|>",
        extra_special_tokens={
            "fake_image_token": "<fake_token_around_image>",
            "image_token": "<image>",
            "end_of_utterance_token": "<end_of_utterance>",
            "global_image_token": "<global-img>",
        },
        chat_template=SMOLVLM_TEMPLATE,
    )
    size, patch, scale = 32, 8, 2
    seq = (size // patch) ** 2 // scale**2
    ip = SmolVLMImageProcessorPil(
        size={"longest_edge": 2 * size}, max_image_size={"longest_edge": size}, do_image_splitting=True
    )
    vp = _video_processor("SmolVLMVideoProcessor", size={"longest_edge": size}, max_image_size={"longest_edge": size})
    proc = SmolVLMProcessor(
        image_processor=ip, tokenizer=tok, video_processor=vp, image_seq_len=seq, chat_template=SMOLVLM_TEMPLATE
    )
    if vp is None:
        # saved as "video_processor": null in processor_config.json, so the reload passes None for the required arg
        proc.video_processor = None
    cfg = SmolVLMConfig(
        vision_config=SmolVLMVisionConfig(**_vit_kwargs(size, patch)),
        text_config=LlamaConfig(**_text_kwargs(tok)),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        scale_factor=scale,
        pad_token_id=tok.pad_token_id,
    )
    return SmolVLMForConditionalGeneration(cfg), proc, "<end_of_utterance>"


def _paligemma():
    from transformers import (
        GemmaConfig,
        PaliGemmaConfig,
        PaliGemmaForConditionalGeneration,
        PaliGemmaProcessor,
        SiglipImageProcessorPil,
        SiglipVisionConfig,
    )

    tok = make_tokenizer(
        ["<pad>", "<eos>", "<bos>", "<unk>", "<image>"],
        bos="<bos>",
        eos="<eos>",
        pad="<pad>",
        unk="<unk>",
        add_bos=True,
        extra_special_tokens={"image_token": "<image>"},
    )
    size = 32
    ip = SiglipImageProcessorPil(size={"height": size, "width": size})
    ip.image_seq_length = (size // 8) ** 2
    proc = PaliGemmaProcessor(image_processor=ip, tokenizer=tok)  # adds the 1152 <locXXXX>/<segXXX> tokens
    cfg = PaliGemmaConfig(
        vision_config=SiglipVisionConfig(**_vit_kwargs(size), projection_dim=HIDDEN),
        text_config=GemmaConfig(**_text_kwargs(tok, vocab_size=len(tok), head_dim=HIDDEN // 2)),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        projection_dim=HIDDEN,
        hidden_size=HIDDEN,
        vocab_size=len(tok),
        pad_token_id=tok.pad_token_id,
    )
    return PaliGemmaForConditionalGeneration(cfg), proc, tok.eos_token


def _gemma3():
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessorPil,
        Gemma3Processor,
        Gemma3TextConfig,
        SiglipVisionConfig,
    )

    tok = make_tokenizer(
        [
            "<pad>",
            "<eos>",
            "<bos>",
            "<unk>",
            "<start_of_turn>",
            "<end_of_turn>",
            "<start_of_image>",
            "<end_of_image>",
            "<image_soft_token>",
        ],
        bos="<bos>",
        eos="<eos>",
        pad="<pad>",
        unk="<unk>",
        add_bos=True,
        extra_special_tokens={
            "boi_token": "<start_of_image>",
            "eoi_token": "<end_of_image>",
            "image_token": "<image_soft_token>",
        },
        chat_template=GEMMA3_TEMPLATE,
    )
    size, mm_tokens = 32, 4
    ip = Gemma3ImageProcessorPil(size={"height": size, "width": size}, do_pan_and_scan=False)
    proc = Gemma3Processor(image_processor=ip, tokenizer=tok, image_seq_length=mm_tokens, chat_template=GEMMA3_TEMPLATE)
    head_dim = HIDDEN // 2
    cfg = Gemma3Config(
        vision_config=SiglipVisionConfig(**_vit_kwargs(size), vision_use_head=False),
        text_config=Gemma3TextConfig(
            **_text_kwargs(tok, head_dim=head_dim, query_pre_attn_scalar=head_dim, sliding_window=64)
        ),
        mm_tokens_per_image=mm_tokens,
        boi_token_index=tok.convert_tokens_to_ids("<start_of_image>"),
        eoi_token_index=tok.convert_tokens_to_ids("<end_of_image>"),
        image_token_index=tok.convert_tokens_to_ids("<image_soft_token>"),
    )
    return Gemma3ForConditionalGeneration(cfg), proc, "<end_of_turn>"


_BUILDERS = {
    "llava": _llava,
    "llava_next": _llava_next,
    "llava_onevision": _llava_onevision,
    "qwen2_vl": lambda: _qwen_vl(v25=False),
    "qwen2_5_vl": lambda: _qwen_vl(v25=True),
    "idefics3": _idefics3,
    "smolvlm": _smolvlm,
    "paligemma": _paligemma,
    "gemma3": _gemma3,
}


def build(family: str, folder: Path) -> Path:
    """Write a tiny random-init ``family`` VLM (model, processor, tokenizer, chat template) into ``folder``."""
    if family not in _BUILDERS:
        raise ValueError(f"unknown family {family!r}; choose one of {FAMILIES}")
    allow_processors_without_torchvision()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    model, processor, end_of_turn = _BUILDERS[family]()
    model.eval()
    tok = processor.tokenizer
    eos_ids = [tok.eos_token_id]
    end_id = tok.convert_tokens_to_ids(end_of_turn)
    if end_id not in eos_ids:
        eos_ids.append(end_id)
    gen = model.generation_config
    gen.eos_token_id = eos_ids if len(eos_ids) > 1 else eos_ids[0]
    gen.pad_token_id = tok.pad_token_id
    gen.bos_token_id = tok.bos_token_id
    gen.do_sample = False
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / "tiny_family.json").write_text(json.dumps({"family": family, "end_of_turn": end_of_turn}) + "\n")
    return folder
