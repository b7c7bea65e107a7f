"""Supervised fine-tuning pieces shared by the recipes and the Ray Train loops: examples with
the prompt masked out, right-padded batches, and LoRA on the language model only."""

from __future__ import annotations

from typing import Any, cast

import torch

from groundloop.genrm import grounded_attention as ga
from groundloop.models import families


def build_example(processor: Any, image: Any, prompt_text: str, target: str) -> dict[str, Any]:
    """Token ids of chat(prompt with image) + target + end of turn, and labels that are -100 on
    every prompt token (system, image, question, context) so only the target is learned; `row`:
    the prompt's processor output (`families.Row`), which `collate` batches."""
    return answer_example(
        processor,
        families.row(processor, image, families.chat(processor, prompt_text)),
        families.text_ids(processor, target) + [families.end_id(processor)],
    )


def answer_example(processor: Any, row: families.Row, answer: list[int]) -> dict[str, Any]:
    """An example of a prompt row and its answer ids, all of the answer learned."""
    return {"row": row, "input_ids": row.ids + answer, "labels": [-100] * len(row.ids) + answer}


def grounded_example(
    processor: Any, image: Any, prompt_text: str, target: str, phrase: str, boxes: Any, image_token_id: int
) -> dict[str, Any]:
    """`build_example` plus what grounded attention needs (`groundloop.genrm.grounded_attention`),
    one query: `attn_query` [the last token of `phrase` in the prompt, after the image] and
    `attn_target` [uniform over the image patches the boxes cover, or the first token when
    there are none]."""
    families.require_one_grid(processor)
    ex = build_example(processor, image, prompt_text, target)
    ids = ex["input_ids"]
    start, grid = ga.image_grid(ex["row"].ids, image_token_id)
    phrase_ids = processor.tokenizer(f" {phrase}", add_special_tokens=False)["input_ids"]
    prompt_len = sum(1 for label in ex["labels"] if label == -100)
    ex["attn_query"] = [ga.phrase_end(ids[:prompt_len], phrase_ids, start + grid * grid)]
    ex["attn_target"] = [ga.target(len(ids), start, ga.box_patches(boxes, grid))]
    return ex


def collate(examples: list[dict[str, Any]], processor: Any) -> dict[str, torch.Tensor]:
    """Right-padded batch with every tensor of the rows' processor output (`families.batch`);
    padding is masked in attention and labels. When examples carry grounded-attention queries
    (lists `attn_query`, `attn_target`), every query flattened: `attn_row` and `attn_query`
    (N,), `attn_target` (N, T)."""
    rows = [e["row"] for e in examples]
    out = families.batch(processor, rows, [e["input_ids"][len(r.ids) :] for e, r in zip(examples, rows)], side="right")
    n = out["input_ids"].shape[1]
    labels = torch.full((len(examples), n), -100)
    for i, e in enumerate(examples):
        labels[i, : len(e["labels"])] = torch.tensor(e["labels"])
    out["labels"] = labels
    queries = [
        (i, q, t) for i, e in enumerate(examples) for q, t in zip(e.get("attn_query", []), e.get("attn_target", []))
    ]
    if queries:
        out["attn_row"] = torch.tensor([i for i, _, _ in queries])
        out["attn_query"] = torch.tensor([q for _, q, _ in queries])
        out["attn_target"] = torch.stack([torch.nn.functional.pad(t, (0, n - len(t))) for _, _, t in queries])
    return out


# Batch entries that are not model inputs: the loss's own (labels are shifted by the caller),
# grounded attention's queries, VL-GenRM's verdict bookkeeping.
NOT_INPUTS = frozenset(
    {"labels", "attn_row", "attn_query", "attn_target", "loss_weight", "verdict_at", "correct", "weight"}
)


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The entries of a collated batch that the model takes (processor tensors and masks)."""
    return {k: v for k, v in batch.items() if k not in NOT_INPUTS}


def add_lora(
    model: Any, r: int, alpha: int, dropout: float, target_modules: str = "", adapter: str | None = None
) -> Any:
    """A PEFT model with LoRA on `target_modules` (a regex over module names, so the vision
    tower's projections are not caught; empty: the language model's projections of the model's
    family, `families.Family.lora_targets`), or the given adapter reopened for training."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if adapter:
        return PeftModel.from_pretrained(model, adapter, is_trainable=True)
    cfg = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_modules or families.family_of(model).lora_targets,
        bias="none",
    )
    return get_peft_model(model, cfg)


def grounded_loss(model: Any, batch: dict[str, torch.Tensor], weight: float, layer: int, head: int = 0) -> torch.Tensor:
    """The LM loss of a collated batch, plus `weight` x the grounded-attention cross-entropy of
    head `head` of LM layer `layer` when the batch carries targets (`grounded_example`). The
    model must run eager attention (`model.set_attn_implementation("eager")`) to return them."""
    batch = families.to_model(batch, model)
    rows, query, targets = (batch.pop(k, None) for k in ("attn_row", "attn_query", "attn_target"))
    if weight <= 0 or query is None:
        return cast(torch.Tensor, model(**batch).loss)
    assert targets is not None and rows is not None  # `collate` writes the three together
    out = model(**batch, output_attentions=True)
    return cast(torch.Tensor, out.loss + weight * attention_term(out, layer, head, query, targets, rows))


def attention_term(
    out: Any, layer: int, head: int, query: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor
) -> torch.Tensor:
    """Grounded attention's cross-entropy for a forward run with `output_attentions=True`."""
    if not out.attentions or out.attentions[layer] is None:
        raise ValueError("grounded attention needs attention weights: load the model with eager attention")
    return ga.attention_loss(out.attentions[layer][:, head], query, targets, rows=rows)
