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
def caption_logprobs(
    model: Any,
    processor: Any,
    images: list[Any],
    prompt_texts: list[str],
    captions: list[str],
    keys: Sequence[Hashable] | None = None,
    share_prefix: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-force each caption (+ the end-of-turn token) after its chat prompt; log-probs at
    caption positions. The rows carry every tensor their family's processor makes
    (`groundloop.models.families`), and the model places its own positions.

    With share_prefix (where the family's positions allow it), each distinct prompt (image
    `keys[i]`, default the image object, and prompt text) runs once and its KV cache serves all
    of its captions, which then cost only their own tokens; equal to the full pass (tested).

    Returns logp (B, T, V) and mask (B, T), float32 on the model's device (S / Delta sum there;
    only B numbers leave a GPU): T is the longest caption in tokens + 1 (the end), and row b
    holds caption b's positions left-aligned, whatever the padding of the batch.
    """
    from groundloop.models import families

    end = families.end_id(processor)
    cap_ids = [families.text_ids(processor, cap) + [end] for cap in captions]
    keys = list(keys) if keys is not None else [id(im) for im in images]
    if share_prefix and families.family_of(model).prefix_cache:
        return _shared_prefix_logprobs(model, processor, images, prompt_texts, cap_ids, keys)
    rows = [families.row(processor, im, families.chat(processor, text)) for im, text in zip(images, prompt_texts)]
    enc = families.batch(processor, rows, cap_ids, side="left")  # every caption ends at the last column
    logp_all = model(**families.to_model(enc, model)).logits.float().log_softmax(-1)
    n, T = enc["input_ids"].shape[1], max(len(c) for c in cap_ids)
    logp = logp_all.new_zeros(len(rows), T, logp_all.shape[-1])
    mask = logp_all.new_zeros(len(rows), T)
    for b, c in enumerate(cap_ids):
        # logits at position i predict token i + 1
        logp[b, : len(c)] = logp_all[b, n - len(c) - 1 : n - 1]
        mask[b, : len(c)] = 1
    return logp, mask


def _shared_prefix_logprobs(
    model: Any,
    processor: Any,
    images: list[Any],
    prompt_texts: list[str],
    cap_ids: list[list[int]],
    keys: list[Hashable],
) -> tuple[torch.Tensor, torch.Tensor]:
    """`caption_logprobs` with one prefill per distinct (image, prompt)."""
    from groundloop.models import families

    slot: dict[tuple[Hashable, str], int] = {}
    firsts: list[int] = []
    for i, (k, text) in enumerate(zip(keys, prompt_texts)):
        if (k, text) not in slot:
            slot[k, text] = len(firsts)
            firsts.append(i)
    group = [slot[k, t] for k, t in zip(keys, prompt_texts)]
    prefixes = [families.row(processor, images[i], families.chat(processor, prompt_texts[i])) for i in firsts]
    penc = families.to_model(families.batch(processor, prefixes, side="left"), model)
    pout = model(**penc, use_cache=True)
    device = penc["input_ids"].device
    rows = torch.tensor(group, device=device)
    first = pout.logits[:, -1].float().log_softmax(-1)[rows]  # each caption's first token
    cache = families.cache_of(pout)
    cache.batch_select_indices(rows)
    # the captions right after their prefix, right-padded so every token keeps its position
    width = max(len(c) for c in cap_ids)
    tok = processor.tokenizer
    ids = torch.full((len(cap_ids), width), tok.pad_token_id if tok.pad_token_id is not None else 0)  # masked
    smask = torch.zeros(len(cap_ids), width, dtype=torch.long)
    for b, c in enumerate(cap_ids):
        ids[b, : len(c)] = torch.tensor(c)
        smask[b, : len(c)] = 1
    attn = torch.cat([penc["attention_mask"][rows], smask.to(device)], 1)
    # positions continue from the cache as the model numbers them (PaliGemma counts from 1)
    out = model(input_ids=ids.to(device), attention_mask=attn, **{families.cache_arg(model): cache})
    rest = out.logits.float().log_softmax(-1)  # position j predicts caption token j + 1
    logp = first.new_zeros(len(cap_ids), width, first.shape[-1])
    mask = first.new_zeros(len(cap_ids), width)
    for b, c in enumerate(cap_ids):
        logp[b, 0] = first[b]
        logp[b, 1 : len(c)] = rest[b, : len(c) - 1]
        mask[b, : len(c)] = 1
    return logp, mask


def score_guided(
    model: Any,
    processor: Any,
    images: list[Any],
    groundings: list[str],
    captions: list[str],
    keys: Sequence[Hashable] | None = None,
    share_prefix: bool = True,
) -> tuple[list[float], list[float]]:
    """S(q,p) and Delta(q,p) of each guided caption: teacher-forced under the grounded prompt
    (q) and under the plain prompt (p). `keys[i]` names caption i's image (rows of one image
    share its prefixes: the plain prompt always, the grounded one when the grounding is the
    image's, svp.grounding=image)."""
    from groundloop import prompts

    logp_q, mask = caption_logprobs(
        model, processor, images, [prompts.grounded_prompt(g) for g in groundings], captions, keys, share_prefix
    )
    logp_p, _ = caption_logprobs(
        model, processor, images, [prompts.BASE_PROMPT] * len(images), captions, keys, share_prefix
    )
    return s_score(logp_q, logp_p, mask).tolist(), delta_score(logp_q, logp_p, mask).tolist()
