"""Supervised fine-tuning pieces shared by the recipes and the Ray Train loops: examples with
the prompt masked out, right-padded batches, and LoRA on the language model only."""

from __future__ import annotations

from typing import Any

import torch

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


def collate(examples: list[dict[str, Any]], processor: Any) -> dict[str, torch.Tensor]:
    """Right-padded batch with pixel values; padding is masked in attention and labels."""
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
    return {"input_ids": ids, "labels": labels, "attention_mask": mask,
            "pixel_values": pixels["pixel_values"]}


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
