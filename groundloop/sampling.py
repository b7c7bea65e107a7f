"""Sampling captions from a VLM: the `Sampler` protocol and its transformers implementation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, cast

import torch
from PIL import Image
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from groundloop.models import families


class Sampler(Protocol):
    def generate(
        self, images: list[Image.Image], texts: list[str], n: int = 1, temperature: float = 0.0, top_p: float = 1.0
    ) -> list[list[str]]:
        """n completions per (image, prompt text) pair; temperature 0 is greedy."""
        ...


class StepSampler(Protocol):
    def sample(
        self,
        images: Sequence[Image.Image],
        texts: Sequence[str],
        prefixes: Sequence[str],
        temperatures: Sequence[float],
        top_p: float = 1.0,
        one_sentence: bool = False,
    ) -> list[str]:
        """One continuation per row of the answer `prefixes[i]` (already written) to
        (images[i], texts[i]), sampled at temperatures[i] (0 = greedy), all rows in one
        batched pass; with one_sentence, each row stops after its next sentence."""
        ...


class RowSampling(LogitsProcessor):
    """Temperature and nucleus sampling with a temperature per row (0 = greedy row), so
    candidates at several temperatures share one generate call."""

    def __init__(self, temperatures: Sequence[float], top_p: float = 1.0) -> None:
        self.t = torch.tensor(temperatures, dtype=torch.float32)[:, None]
        self.top_p = top_p

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        greedy = self.t[:, 0] <= 0
        out = scores / self.t.clamp(min=1e-5)
        if self.top_p < 1.0:
            probs = out.softmax(-1)
            sorted_p, order = probs.sort(-1, descending=True)
            # Drop a token when the mass before it already reaches top_p (the top one stays).
            drop_sorted = (sorted_p.cumsum(-1) - sorted_p) >= self.top_p
            drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
            out = out.masked_fill(drop, float("-inf"))
        if greedy.any():
            best = scores.argmax(-1, keepdim=True)
            only_best = torch.full_like(scores, float("-inf")).scatter(-1, best, 0.0)
            out = torch.where(greedy[:, None], only_best, out)
        return cast(torch.FloatTensor, out)  # transformers' protocol names the legacy tensor types


class SentenceEnd(StoppingCriteria):
    """Done per row once its last token ends a sentence."""

    def __init__(self, end_ids: Sequence[int]) -> None:
        self.end_ids = torch.tensor(sorted(end_ids))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        return cast(torch.BoolTensor, torch.isin(input_ids[:, -1], self.end_ids))


def first_sentence(text: str) -> str:
    for i, ch in enumerate(text):
        if ch in ".!?" and (i + 1 == len(text) or text[i + 1].isspace()):
            return text[: i + 1]
    return text


class HFSampler:
    """A transformers VLM with its processor as a `Sampler` (any family in
    `groundloop.models.families`: its prompt format, image tensors and end-of-turn token)."""

    def __init__(self, model: Any, processor: Any, max_new_tokens: int = 160, seed: int | None = None) -> None:
        self.model = model.eval()
        self.processor = processor
        self.max_new_tokens = max_new_tokens
        self.generator_seed = seed
        self.end_ids = families.end_ids(processor)
        tok = processor.tokenizer
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else self.end_ids[-1]

    def encode(
        self, images: Sequence[Image.Image], texts: Sequence[str], prefixes: Sequence[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """Left padded, so every prompt ends at the same position and generation continues all."""
        return families.to_model(
            families.prompts_batch(self.processor, images, texts, prefixes, side="left"), self.model
        )

    @torch.no_grad()
    def generate(
        self, images: list[Image.Image], texts: list[str], n: int = 1, temperature: float = 0.0, top_p: float = 1.0
    ) -> list[list[str]]:
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} prompts")
        if not images:
            return []
        if self.generator_seed is not None:
            torch.manual_seed(self.generator_seed)
        enc = self.encode(images, texts)
        sample = temperature > 0
        out = self.model.generate(
            **enc,
            max_new_tokens=self.max_new_tokens,
            do_sample=sample,
            temperature=temperature if sample else None,
            top_p=top_p if sample else None,
            num_return_sequences=n if sample else 1,
            eos_token_id=self.end_ids,
            pad_token_id=self.pad_id,
        )
        texts_out = self.processor.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        texts_out = [t.strip() for t in texts_out]
        if not sample:  # greedy: n identical completions
            return [[t] * n for t in texts_out]
        return [texts_out[i * n : (i + 1) * n] for i in range(len(images))]

    def sentence_end_ids(self) -> list[int]:
        if not hasattr(self, "_end_ids"):
            tok = self.processor.tokenizer
            self._end_ids = [
                i
                for t, i in tok.get_vocab().items()
                if tok.convert_tokens_to_string([t]).strip().endswith((".", "!", "?"))
            ]
        return self._end_ids

    @torch.no_grad()
    def sample(
        self,
        images: Sequence[Image.Image],
        texts: Sequence[str],
        prefixes: Sequence[str],
        temperatures: Sequence[float],
        top_p: float = 1.0,
        one_sentence: bool = False,
    ) -> list[str]:
        if not len(images) == len(texts) == len(prefixes) == len(temperatures):
            raise ValueError("images, texts, prefixes and temperatures must have one entry per row")
        if not len(images):
            return []
        if self.generator_seed is not None:
            torch.manual_seed(self.generator_seed)
        enc = self.encode(images, texts, prefixes)
        out = self.model.generate(
            **enc,
            max_new_tokens=self.max_new_tokens,
            do_sample=True,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            logits_processor=LogitsProcessorList([RowSampling(temperatures, top_p)]),
            stopping_criteria=StoppingCriteriaList([SentenceEnd(self.sentence_end_ids())] if one_sentence else []),
            eos_token_id=self.end_ids,
            pad_token_id=self.pad_id,
        )
        texts_out = [
            t.strip()
            for t in self.processor.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        ]
        return [first_sentence(t) for t in texts_out] if one_sentence else texts_out
