"""SVP's scores of a guided caption and the per-image top-fraction selection.

Given full-vocabulary log-probabilities of the same caption tokens under the grounded
prompt (q) and the plain prompt (p):

    S(q,p) = sum_t sum_v q_vt (log q_vt - log p_vt)            (log-ratio)
    Delta(q,p) = sum_t sum_v (q_vt log q_vt - p_vt log p_vt)   (weighted difference)

`caption_logprobs` produces those tensors by teacher forcing a VLM, aligned on caption
tokens, so padding and batch composition do not change a caption's score.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import torch


def s_score(logp_q: torch.Tensor, logp_p: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """S(q,p) per caption.

    logp_q, logp_p: (B, T, V) log-probs of caption position t under the grounded / plain prompt.
    mask: (B, T) 1 on real caption tokens, 0 on padding. Returns (B,).
    """
    per_t = (logp_q.exp() * (logp_q - logp_p)).sum(-1)
    return (per_t * mask).sum(-1)


def delta_score(logp_q: torch.Tensor, logp_p: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Delta(q,p) per caption: the negative entropy of q minus that of p, summed over t.

    Shapes as in `s_score`. Returns (B,).
    """
    per_t = (logp_q.exp() * logp_q).sum(-1) - (logp_p.exp() * logp_p).sum(-1)
    return (per_t * mask).sum(-1)


SCORES = {"S": s_score, "delta": delta_score}


def top_fraction(scores: Sequence[float], groups: Sequence[Hashable], fraction: float) -> list[bool]:
    """Keep the ceil(fraction * n) highest-scoring items of every group (at least one).

    Ties keep the earlier item. Returns a keep flag per item, in input order.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if len(scores) != len(groups):
        raise ValueError(f"{len(scores)} scores but {len(groups)} group ids")
    by_group: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    keep = [False] * len(scores)
    for idx in by_group.values():
        k = max(1, math.ceil(fraction * len(idx)))
        for i in sorted(idx, key=lambda i: (-scores[i], i))[:k]:
            keep[i] = True
    return keep


@torch.no_grad()
def caption_logprobs(model: Any, processor: Any, images: list[Any], prompt_texts: list[str],
                     captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-force each caption (+ the end-of-turn token) after its chat prompt; log-probs at
    caption positions. The rows carry every tensor their family's processor makes
    (`groundloop.models.families`), and the model places its own positions.

    Returns logp (B, T, V) and mask (B, T): T is the longest caption in tokens + 1 (the end),
    and row b holds caption b's positions left-aligned, whatever the padding of the batch.
    """
    from groundloop.models import families

    end = families.end_id(processor)
    rows = [families.row(processor, im, families.chat(processor, text)) for im, text in zip(images, prompt_texts)]
    cap_ids = [families.text_ids(processor, cap) + [end] for cap in captions]
    enc = families.batch(processor, rows, cap_ids, side="left")  # every caption ends at the last column
    logp_all = model(**families.to_model(enc, model)).logits.float().log_softmax(-1).cpu()
    n, T = enc["input_ids"].shape[1], max(len(c) for c in cap_ids)
    logp = torch.zeros(len(rows), T, logp_all.shape[-1])
    mask = torch.zeros(len(rows), T)
    for b, c in enumerate(cap_ids):
        # logits at position i predict token i + 1
        logp[b, :len(c)] = logp_all[b, n - len(c) - 1:n - 1]
        mask[b, :len(c)] = 1
    return logp, mask


def score_guided(model: Any, processor: Any, images: list[Any], groundings: list[str],
                 captions: list[str]) -> tuple[list[float], list[float]]:
    """S(q,p) and Delta(q,p) of each guided caption: one batched teacher-forced forward under
    the grounded prompt (q) and one under the plain prompt (p)."""
    from groundloop import prompts

    logp_q, mask = caption_logprobs(model, processor, images, [prompts.grounded_prompt(g) for g in groundings],
                                    captions)
    logp_p, _ = caption_logprobs(model, processor, images, [prompts.BASE_PROMPT] * len(images), captions)
    return s_score(logp_q, logp_p, mask).tolist(), delta_score(logp_q, logp_p, mask).tolist()
