"""What differs between VLM families, in one table, and the one way every forward is built.

Every forward outside `generate` (scoring, fine-tuning, the value model, the judge) and
`generate` itself go through `encode`: each row's prompt goes through the family's own
processor on its own (so whatever tensors the family needs come along: `pixel_values`,
`image_sizes`, `image_grid_thw`, `pixel_attention_mask`, `token_type_ids`, ...), a row's answer
tokens (a caption being scored, a target being learned, a prefix being continued) are appended
after its prompt, and the rows are padded into one batch. Positions are left to the model
(Qwen2-VL's M-RoPE computes its own from the image grid and the attention mask).

The per-family table (`FAMILIES`, keyed by `config.model_type`) holds only what cannot be read
off the model or processor: the token that ends an assistant turn, the module path of the
language model (LoRA targets only its projections), whether the processor wants one image list
per prompt, the token type of answer tokens, and whether a cached prefix can be extended with
1-D positions. A family not in the table gets `GENERIC`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from groundloop import prompts

PROJECTIONS = "q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj"


@dataclass(frozen=True)
class Family:
    """processor: the family's processor class name.
    language_model: the text decoder's module path (LoRA on its projections only).
    end_of_turn: the token an assistant turn ends with; None when it is the tokenizer's eos.
    chat_template: False for PaliGemma, whose processor writes its prompt format itself.
    answer_token_type: the token type of answer tokens (PaliGemma: 1, causal; its prompt is 0,
        attended both ways), where the processor returns `token_type_ids`.
    prefix_cache: a prompt's KV cache can be extended with 1-D positions (not under M-RoPE).
    one_grid: an image is one square grid of patch tokens (grounded attention maps boxes onto
        it); tiled layouts (LLaVA-Next's anyres, Idefics3's splits, Qwen's merged patches) are not."""

    processor: str = ""
    language_model: str = "language_model"
    end_of_turn: str | None = None
    chat_template: bool = True
    answer_token_type: int = 0
    prefix_cache: bool = True
    one_grid: bool = False

    @property
    def lora_targets(self) -> str:
        return rf".*{re.escape(self.language_model)}.*\.({PROJECTIONS})"


GENERIC = Family()
FAMILIES: dict[str, Family] = {
    "llava": Family("LlavaProcessor", one_grid=True),
    "llava_next": Family("LlavaNextProcessor"),
    "llava_onevision": Family("LlavaOnevisionProcessor", end_of_turn="<|im_end|>"),
    "qwen2_vl": Family("Qwen2VLProcessor", end_of_turn="<|im_end|>", prefix_cache=False),
    "qwen2_5_vl": Family("Qwen2_5_VLProcessor", end_of_turn="<|im_end|>", prefix_cache=False),
    "idefics3": Family("Idefics3Processor", language_model="text_model", end_of_turn="<end_of_utterance>"),
    "smolvlm": Family("SmolVLMProcessor", language_model="text_model", end_of_turn="<end_of_utterance>"),
    "paligemma": Family("PaliGemmaProcessor", chat_template=False, answer_token_type=1, one_grid=True),
    "gemma3": Family("Gemma3Processor", end_of_turn="<end_of_turn>"),
}
_BY_PROCESSOR = {f.processor: f for f in FAMILIES.values()}


def family_of(model: Any) -> Family:
    """The family of a transformers VLM (or a PEFT model around one, or its config)."""
    config = getattr(model, "config", model)
    return FAMILIES.get(getattr(config, "model_type", ""), GENERIC)


def processor_family(processor: Any) -> Family:
    """The family a processor belongs to, by its class."""
    return _BY_PROCESSOR.get(type(processor).__name__, GENERIC)


def end_ids(processor: Any, family: Family | None = None) -> list[int]:
    """The token ids that end an answer: the family's end of turn, and eos."""
    tok = processor.tokenizer
    family = family or processor_family(processor)
    ids = []
    if family.end_of_turn:
        eot = tok.convert_tokens_to_ids(family.end_of_turn)
        if isinstance(eot, int) and eot != tok.unk_token_id:
            ids.append(eot)
    if tok.eos_token_id is not None and tok.eos_token_id not in ids:
        ids.append(tok.eos_token_id)
    return ids


def end_id(processor: Any) -> int:
    """The token a learned or scored answer ends with."""
    return end_ids(processor)[0]


def chat(processor: Any, text: str, prefix: str | None = None) -> str:
    """The prompt text for one image and `text`: the chat template's user turn and generation
    prompt (with `prefix`, the assistant's answer so far, to be continued), BOS included when the
    tokenizer would add one and the template does not write it."""
    family = processor_family(processor)
    if not family.chat_template:
        return text  # the processor writes <image>... <bos> text \n
    msgs = prompts.messages(text)
    if prefix:
        msgs = msgs + [{"role": "assistant", "content": [{"type": "text", "text": prefix}]}]
        out: str = processor.apply_chat_template(msgs, continue_final_message=True)
    else:
        out = processor.apply_chat_template(msgs, add_generation_prompt=True)
    tok = processor.tokenizer
    bos = tok.bos_token
    if bos and not out.startswith(bos) and _adds_bos(tok):
        out = bos + out
    return out


def _adds_bos(tok: Any) -> bool:
    ids = tok("a")["input_ids"]
    return bool(ids) and ids[0] == tok.bos_token_id


def text_ids(processor: Any, text: str) -> list[int]:
    """Token ids of answer text, without special tokens."""
    return list(processor.tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclass
class Row:
    """One row's processor output for its prompt: token ids, the per-token tensors that go with
    them (token_type_ids, ...), and the image tensors (batch dimension first)."""

    ids: list[int]
    per_token: dict[str, list[int]]
    images: dict[str, torch.Tensor]


_NOT_INPUTS = {"labels"}  # PaliGemma's processor returns prompt-only labels; answers are labelled by callers


def row(processor: Any, image: Image.Image, chat_text: str) -> Row:
    """`processor` on one (image, prompt text) row. The image goes in as the prompt's own list:
    SmolVLM and Gemma3 read a flat list as all one prompt's images, the others read both alike."""
    enc = processor(images=[[image]], text=[chat_text], return_tensors="pt", add_special_tokens=False)
    ids = enc["input_ids"][0].tolist()
    per_token, image_tensors = {}, {}
    for key, value in enc.items():
        if key in ("input_ids", "attention_mask") or key in _NOT_INPUTS or not torch.is_tensor(value):
            continue
        if value.dim() == 2 and value.shape == enc["input_ids"].shape:
            per_token[key] = value[0].tolist()
        else:
            image_tensors[key] = value
    return Row(ids, per_token, image_tensors)


def _stack(parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """Rows' image tensors in one batch: concatenated on dim 0, zero-padded on the other dims
    where rows differ (LLaVA-Next's tiles, Idefics3's sub-images, their masks)."""
    shape = [max(p.shape[d] for p in parts) for d in range(1, parts[0].dim())]
    padded = []
    for p in parts:
        pad: list[int] = []
        for d in reversed(range(1, p.dim())):
            pad += [0, shape[d - 1] - p.shape[d]]
        padded.append(torch.nn.functional.pad(p, pad) if any(pad) else p)
    return torch.cat(padded, 0)


def batch(
    processor: Any, rows: Sequence[Row], answers: Sequence[Sequence[int]] | None = None, side: str = "left"
) -> dict[str, torch.Tensor]:
    """One model input from rows and each row's answer ids (appended after its prompt), padded on
    `side`. Left: every row's last real token is the last column (scoring, judging, generating);
    right: every row starts at column 0 (training, with labels made by the caller)."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    family = processor_family(processor)
    answers = answers if answers is not None else [[] for _ in rows]
    if len(answers) != len(rows):
        raise ValueError(f"{len(rows)} rows but {len(answers)} answers")
    tok = processor.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    seqs = [r.ids + list(a) for r, a in zip(rows, answers)]
    n = max(len(s) for s in seqs)
    ids = torch.full((len(rows), n), pad, dtype=torch.long)
    attn = torch.zeros((len(rows), n), dtype=torch.long)
    keys = sorted({k for r in rows for k in r.per_token})
    extra = {k: torch.zeros((len(rows), n), dtype=torch.long) for k in keys}
    for b, (r, s, a) in enumerate(zip(rows, seqs, answers)):
        cols = slice(n - len(s), n) if side == "left" else slice(0, len(s))
        ids[b, cols] = torch.tensor(s)
        attn[b, cols] = 1
        for k in keys:
            fill = family.answer_token_type if k == "token_type_ids" else 0
            extra[k][b, cols] = torch.tensor(r.per_token.get(k, [0] * len(r.ids)) + [fill] * len(a))
    out = {"input_ids": ids, "attention_mask": attn, **extra}
    for k in sorted({k for r in rows for k in r.images}):
        out[k] = _stack([r.images[k] for r in rows])
    return out


def encode(
    processor: Any,
    images: Sequence[Image.Image],
    chats: Sequence[str],
    answers: Sequence[Sequence[int]] | None = None,
    side: str = "left",
) -> dict[str, torch.Tensor]:
    """`batch` of `row`s: images[i] with chats[i], then answers[i]."""
    if len(images) != len(chats):
        raise ValueError(f"{len(images)} images but {len(chats)} prompts")
    return batch(processor, [row(processor, im, c) for im, c in zip(images, chats)], answers, side)


def require_one_grid(processor: Any) -> None:
    """Grounded attention needs an image laid out as one square patch grid."""
    if not processor_family(processor).one_grid:
        raise ValueError(
            f"grounded attention maps boxes onto one square grid of image tokens; "
            f"{type(processor).__name__} lays images out otherwise (set its weight to 0)"
        )


def image_token_id(model: Any) -> int:
    """The id of the token that stands for image features in the prompt."""
    config = model.config
    for attr in ("image_token_id", "image_token_index"):
        value = getattr(config, attr, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"{type(model).__name__}: no image token id in its config")


def prompts_batch(
    processor: Any,
    images: Sequence[Image.Image],
    texts: Sequence[str],
    prefixes: Sequence[str] | None = None,
    side: str = "left",
) -> dict[str, torch.Tensor]:
    """The batch for answering texts[i] about images[i], the answer begun with prefixes[i]: in
    the chat (continued, `chat`), or for a family without a chat template as answer tokens."""
    prefixes = list(prefixes) if prefixes is not None else [""] * len(texts)
    if processor_family(processor).chat_template:
        return encode(processor, images, [chat(processor, t, p) for t, p in zip(texts, prefixes)], side=side)
    return encode(processor, images, list(texts), [text_ids(processor, p) if p else [] for p in prefixes], side)


def to_model(enc: dict[str, torch.Tensor], model: Any) -> dict[str, torch.Tensor]:
    """A batch on the model's device, its floating tensors (pixel values) in the model's dtype."""
    param = next(model.parameters())
    return {
        k: v.to(param.device, dtype=param.dtype if v.is_floating_point() else None) if torch.is_tensor(v) else v
        for k, v in enc.items()
    }


def cache_arg(model: Any) -> str:
    """The name a model's forward takes its KV cache by: transformers >= 5.2x says `cache`,
    earlier 5.x `past_key_values` (a PEFT model is asked about its base model)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def cache_of(output: Any) -> Any:
    """The KV cache a forward with use_cache=True returned."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values
