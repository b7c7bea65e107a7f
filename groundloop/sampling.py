"""Sampling captions from a VLM: the `Sampler` protocol and its transformers implementation."""

from __future__ import annotations

from typing import Any, Protocol

import torch
from PIL import Image

from groundloop import prompts


class Sampler(Protocol):
    def generate(self, images: list[Image.Image], texts: list[str], n: int = 1,
                 temperature: float = 0.0, top_p: float = 1.0) -> list[list[str]]:
        """n completions per (image, prompt text) pair; temperature 0 is greedy."""
        ...


class HFSampler:
    """A transformers VLM (LLaVA-style processor with a chat template) as a `Sampler`."""

    def __init__(self, model: Any, processor: Any, max_new_tokens: int = 160,
                 seed: int | None = None) -> None:
        self.model = model.eval()
        self.processor = processor
        self.max_new_tokens = max_new_tokens
        self.generator_seed = seed
        # Batched generation needs left padding so every prompt ends at the same position.
        self.processor.tokenizer.padding_side = "left"

    def encode(self, images: list[Image.Image], texts: list[str]) -> dict[str, torch.Tensor]:
        chats = [self.processor.apply_chat_template(prompts.messages(t), add_generation_prompt=True)
                 for t in texts]
        return self.processor(images=images, text=chats, padding=True, return_tensors="pt",
                              add_special_tokens=False)

    @torch.no_grad()
    def generate(self, images: list[Image.Image], texts: list[str], n: int = 1,
                 temperature: float = 0.0, top_p: float = 1.0) -> list[list[str]]:
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} prompts")
        if not images:
            return []
        if self.generator_seed is not None:
            torch.manual_seed(self.generator_seed)
        enc = self.encode(images, texts)
        sample = temperature > 0
        out = self.model.generate(
            **enc, max_new_tokens=self.max_new_tokens, do_sample=sample,
            temperature=temperature if sample else None, top_p=top_p if sample else None,
            num_return_sequences=n if sample else 1,
        )
        texts_out = self.processor.batch_decode(out[:, enc["input_ids"].shape[1]:],
                                                skip_special_tokens=True)
        texts_out = [t.strip() for t in texts_out]
        if not sample:  # greedy: n identical completions
            return [[t] * n for t in texts_out]
        return [texts_out[i * n:(i + 1) * n] for i in range(len(images))]
