"""ViMaR's value side: the margin reward, TD(0) targets, and the value model (VLM + head).

Reward of a caption sentence s for image I, with delta = CLIP cosine similarity:

    r = delta            if delta >= tau
    r = -alpha (tau - delta)   otherwise

tau is calibrated from the data (a percentile of delta over training sentences), never
hard-coded. The value model V(I, s) is trained with semi-gradient TD(0):

    target_i = r_i + gamma * V(I, s_{i+1})   (no gradient through V(I, s_{i+1}))
    target_i = r_i                           for the last sentence of a caption.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from groundloop import prompts

VALUE_FILE = "value_head.pt"
VALUE_META = "value.json"


def split_sentences(text: str) -> list[str]:
    """A caption's sentences ("In the image, ... . A red circle ... .") without empty ones."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def margin_reward(delta: torch.Tensor, tau: float, alpha: float = 1.0) -> torch.Tensor:
    """delta: (N,) image-text similarities. Returns (N,) rewards: delta above tau, and a
    penalty proportional to the shortfall below it."""
    return torch.where(delta >= tau, delta, -alpha * (tau - delta))


def calibrate(scores: Sequence[float], percentile: float) -> float:
    """The percentile (0-100) of a score distribution: how tau and thresholds are set."""
    if not len(scores):
        raise ValueError("cannot calibrate on an empty score list")
    return float(np.percentile(np.asarray(scores, dtype=np.float64), percentile))


def td_targets(rewards: torch.Tensor, next_values: torch.Tensor, terminal: torch.Tensor,
               gamma: float = 0.9) -> torch.Tensor:
    """TD(0) targets. rewards, next_values: (N,); terminal: (N,) bool, True for a caption's
    last sentence (its next value is ignored). Returns (N,), detached."""
    bootstrap = torch.where(terminal, torch.zeros_like(next_values), next_values)
    return (rewards + gamma * bootstrap).detach()


def td_loss(values: torch.Tensor, next_values: torch.Tensor, rewards: torch.Tensor,
            terminal: torch.Tensor, gamma: float = 0.9) -> torch.Tensor:
    """Semi-gradient TD(0): mean squared error of V(s_i) against r_i + gamma V(s_{i+1}),
    the target carrying no gradient. All arguments (N,); returns a scalar."""
    return torch.nn.functional.mse_loss(values, td_targets(rewards, next_values, terminal, gamma))


def transitions(captions: Sequence[Sequence[str]], rewards: Sequence[Sequence[float]],
                ) -> list[tuple[int, str, str, float, bool]]:
    """(caption index, s_i, s_{i+1} or '' after the last, r_i, terminal) for every sentence
    of every caption."""
    out = []
    for c, (sents, rs) in enumerate(zip(captions, rewards)):
        if len(sents) != len(rs):
            raise ValueError(f"caption {c}: {len(sents)} sentences but {len(rs)} rewards")
        for i, (s, r) in enumerate(zip(sents, rs)):
            last = i == len(sents) - 1
            out.append((c, s, "" if last else sents[i + 1], float(r), last))
    return out


class ValueFunction(Protocol):
    def values(self, images: Sequence[Image.Image], sentences: Sequence[str]) -> list[float]:
        """V(image_i, sentence_i) for each pair."""
        ...


class ValueModel(torch.nn.Module):
    """A VLM backbone with a scalar head on the pooled hidden states of the sentence.

    The state (image, sentence) is written as the chat: user = image + base prompt,
    assistant = the sentence, so the backbone sees what it saw when it wrote the sentence.
    meta["pool"]: the hidden state the head reads: the sentence's "last" token (default), or the
    "mean" over the sentence's tokens.
    """

    def __init__(self, vlm: Any, processor: Any, meta: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.vlm = vlm
        self.processor = processor
        hidden = vlm.config.text_config.hidden_size
        self.head = torch.nn.Linear(hidden, 1)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)
        self.meta: dict[str, Any] = dict(meta or {})

    def encode(self, images: Sequence[Image.Image], sentences: Sequence[str]) -> dict[str, torch.Tensor]:
        tok = self.processor.tokenizer
        tok.padding_side = "left"  # the last position is then every row's last real token
        chats = [self.processor.apply_chat_template(
            prompts.messages(prompts.BASE_PROMPT) + [
                {"role": "assistant", "content": [{"type": "text", "text": s}]}],
            continue_final_message=True) for s in sentences]
        enc = self.processor(images=list(images), text=chats, padding=True, return_tensors="pt",
                             add_special_tokens=False)
        # Left padding: a sentence is the last n tokens of its row.
        n = torch.tensor([max(1, len(tok(s, add_special_tokens=False)["input_ids"])) for s in sentences])
        pos = torch.arange(enc["input_ids"].shape[1])[None, :]
        enc["sentence_mask"] = (pos >= enc["input_ids"].shape[1] - n[:, None]).float()
        return enc

    def forward(self, sentence_mask: torch.Tensor | None = None, **enc: torch.Tensor) -> torch.Tensor:
        """enc: `encode`'s output. Returns (B,) values."""
        h = self.vlm.model(**enc).last_hidden_state
        if self.meta.get("pool", "last") == "mean" and sentence_mask is not None:
            pooled = (h * sentence_mask[..., None]).sum(1) / sentence_mask.sum(1, keepdim=True)
        else:
            pooled = h[:, -1]
        return self.head(pooled).squeeze(-1)

    @torch.no_grad()
    def values(self, images: Sequence[Image.Image], sentences: Sequence[str],
               batch_size: int = 64) -> list[float]:
        if len(images) != len(sentences):
            raise ValueError(f"{len(images)} images but {len(sentences)} sentences")
        was_training = self.training
        self.eval()
        out: list[float] = []
        for i in range(0, len(images), batch_size):
            out += self(**self.encode(images[i:i + batch_size], sentences[i:i + batch_size])).tolist()
        self.train(was_training)
        return out

    def save_pretrained(self, folder: str | Path) -> None:
        """The backbone as an ordinary VLM folder, plus the head and the calibration."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.vlm.save_pretrained(folder)
        self.processor.save_pretrained(folder)
        torch.save(self.head.state_dict(), folder / VALUE_FILE)
        (folder / VALUE_META).write_text(json.dumps(self.meta, indent=1))

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> ValueModel:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        folder = Path(folder)
        if not (folder / VALUE_FILE).exists():
            raise FileNotFoundError(f"{folder} is not a value model folder (no {VALUE_FILE})")
        vlm = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32)
        model = cls(vlm, AutoProcessor.from_pretrained(folder),
                    json.loads((folder / VALUE_META).read_text()))
        model.head.load_state_dict(torch.load(folder / VALUE_FILE, weights_only=True))
        return model.eval()
