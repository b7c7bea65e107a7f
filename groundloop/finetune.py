"""Supervised fine-tuning pieces shared by the recipes and the Ray Train loops: examples with
the prompt masked out, right-padded batches, and LoRA on the language model only."""

from __future__ import annotations

from typing import Any

import torch

from groundloop import grounded_attention as ga
from groundloop import prompts


def build_example(processor: Any, image: Any, prompt_text: str, target: str) -> dict[str, Any]:
    """Token ids of chat(prompt with image) + target + EOS, and labels that are -100 on every
    prompt token (system, image, question, context) so only the target is learned."""
    tok = processor.tokenizer
    chat = processor.apply_chat_template(prompts.messages(prompt_text), add_generation_prompt=True)
    prompt_ids = list(processor(images=[image], text=[chat], add_special_tokens=False)["input_ids"][0])
    target_ids = tok(target, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    return {"input_ids": prompt_ids + target_ids,
            "labels": [-100] * len(prompt_ids) + target_ids, "image": image}


def grounded_example(processor: Any, image: Any, prompt_text: str, target: str, phrase: str,
                     boxes: Any, image_token_id: int) -> dict[str, Any]:
    """`build_example` plus what grounded attention needs (`groundloop.grounded_attention`),
    one query: `attn_query` [the last token of `phrase` in the prompt, after the image] and
    `attn_target` [uniform over the image patches the boxes cover, or the first token when
    there are none]."""
    ex = build_example(processor, image, prompt_text, target)
    ids = ex["input_ids"]
    start, grid = ga.image_grid(ids, image_token_id)
    phrase_ids = processor.tokenizer(f" {phrase}", add_special_tokens=False)["input_ids"]
    prompt_len = sum(1 for label in ex["labels"] if label == -100)
    ex["attn_query"] = [ga.phrase_end(ids[:prompt_len], phrase_ids, start + grid * grid)]
    ex["attn_target"] = [ga.target(len(ids), start, ga.box_patches(boxes, grid))]
    return ex


def collate(examples: list[dict[str, Any]], processor: Any) -> dict[str, torch.Tensor]:
    """Right-padded batch with pixel values; padding is masked in attention and labels. When
    examples carry grounded-attention queries (lists `attn_query`, `attn_target`), every query
    flattened: `attn_row` and `attn_query` (N,), `attn_target` (N, T)."""
    n = max(len(e["input_ids"]) for e in examples)
    pad = processor.tokenizer.pad_token_id
    ids = torch.full((len(examples), n), pad)
    labels = torch.full((len(examples), n), -100)
    mask = torch.zeros((len(examples), n), dtype=torch.long)
    for i, e in enumerate(examples):
        L = len(e["input_ids"])
        ids[i, :L] = torch.tensor(e["input_ids"])
        labels[i, :L] = torch.tensor(e["labels"])
        mask[i, :L] = 1
    pixels = processor.image_processor(images=[e["image"] for e in examples], return_tensors="pt")
    out = {"input_ids": ids, "labels": labels, "attention_mask": mask, "pixel_values": pixels["pixel_values"]}
    queries = [(i, q, t) for i, e in enumerate(examples)
               for q, t in zip(e.get("attn_query", []), e.get("attn_target", []))]
    if queries:
        out["attn_row"] = torch.tensor([i for i, _, _ in queries])
        out["attn_query"] = torch.tensor([q for _, q, _ in queries])
        out["attn_target"] = torch.stack([torch.nn.functional.pad(t, (0, n - len(t))) for _, _, t in queries])
    return out


def add_lora(model: Any, r: int, alpha: int, dropout: float, target_modules: str,
             adapter: str | None = None) -> Any:
    """A PEFT model with LoRA on `target_modules` (a regex over module names, so the vision
    tower's q/v projections are not caught), or the given adapter reopened for training."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if adapter:
        return PeftModel.from_pretrained(model, adapter, is_trainable=True)
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules,
                     bias="none")
    return get_peft_model(model, cfg)


def grounded_loss(model: Any, batch: dict[str, torch.Tensor], weight: float, layer: int,
                  head: int = 0) -> torch.Tensor:
    """The LM loss of a collated batch, plus `weight` x the grounded-attention cross-entropy of
    head `head` of LM layer `layer` when the batch carries targets (`grounded_example`). The
    model must run eager attention (`model.set_attn_implementation("eager")`) to return them."""
    batch = dict(batch)
    rows, query, targets = (batch.pop(k, None) for k in ("attn_row", "attn_query", "attn_target"))
    if weight <= 0 or query is None:
        return model(**batch).loss
    out = model(**batch, output_attentions=True)
    return out.loss + weight * attention_term(out, layer, head, query, targets, rows)


def attention_term(out: Any, layer: int, head: int, query: torch.Tensor, targets: torch.Tensor,
                   rows: torch.Tensor) -> torch.Tensor:
    """Grounded attention's cross-entropy for a forward run with `output_attentions=True`."""
    if not out.attentions or out.attentions[layer] is None:
        raise ValueError("grounded attention needs attention weights: load the model with eager attention")
    return ga.attention_loss(out.attentions[layer][:, head], query, targets, rows=rows)
