"""Grounded attention: the vision expert's boxes tell one attention head where to look.

A critique checks a phrase ("red circle") against the image. In a small VLM that lookup is a
two-hop circuit the language model finds late and abruptly, if at all: fine-tuned on yes/no
questions alone, the shipped VLM stays at chance for hundreds to thousands of steps
(`benchmarks/probes/vlm_presence_probe.py`). Here the expert's evidence supervises the lookup
directly: at the phrase's last token, one head of one layer is trained to attend to the
image patches the expert found that object in, or, when the expert found none, to the
sequence's first token (a "nothing here" sink). The answer token then only has to read that
head's result.

Pure functions: patch indices of boxes, the target distribution over a sequence, where a
phrase ends in a token sequence, and the cross-entropy of a head's attention against it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

Box = Sequence[float]  # normalized (x0, y0, x1, y1) in [0, 1]


def box_patches(boxes: Sequence[Box], grid: int) -> list[int]:
    """Row-major indices of the grid x grid patches that each box overlaps (sorted, unique)."""
    out: set[int] = set()
    for x0, y0, x1, y1 in boxes:
        if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
            raise ValueError(f"box {(x0, y0, x1, y1)} is not a normalized (x0, y0, x1, y1) box")
        c0, c1 = int(x0 * grid), min(grid - 1, int(x1 * grid - 1e-9))
        r0, r1 = int(y0 * grid), min(grid - 1, int(y1 * grid - 1e-9))
        out.update(r * grid + c for r in range(r0, r1 + 1) for c in range(c0, c1 + 1))
    return sorted(out)


def image_grid(ids: Sequence[int], image_token_id: int) -> tuple[int, int]:
    """(index of the first image token, side of the square patch grid) of a token sequence."""
    start, n = list(ids).index(image_token_id), list(ids).count(image_token_id)
    grid = int(round(n**0.5))
    if grid * grid != n:
        raise ValueError(f"{n} image tokens are not a square patch grid")
    return start, grid


def phrase_end(ids: Sequence[int], phrase: Sequence[int], start: int = 0) -> int:
    """Index of the last token of the last occurrence of `phrase` in `ids[start:]`."""
    n = len(phrase)
    if n == 0:
        raise ValueError("empty phrase")
    for i in range(len(ids) - n, start - 1, -1):
        if list(ids[i : i + n]) == list(phrase):
            return i + n - 1
    raise ValueError(f"phrase {list(phrase)} not found after position {start}")


def phrase_ends(ids: Sequence[int], phrases: Sequence[Sequence[int]], start: int = 0) -> list[int]:
    """The last token of each phrase in turn, each found first after the previous one (a
    critique names its claims in order, and the same phrase may come twice)."""
    out = []
    for phrase in phrases:
        n = len(phrase)
        if n == 0:
            raise ValueError("empty phrase")
        at = next((i for i in range(start, len(ids) - n + 1) if list(ids[i : i + n]) == list(phrase)), None)
        if at is None:
            raise ValueError(f"phrase {list(phrase)} not found after position {start}")
        out.append(at + n - 1)
        start = at + n
    return out


def target(length: int, image_start: int, patches: Sequence[int], sink: int = 0) -> torch.Tensor:
    """(length,) distribution: uniform over the image tokens of `patches` (image token p sits
    at image_start + p), or all on `sink` when there are none."""
    t = torch.zeros(length)
    if patches:
        t[[image_start + p for p in patches]] = 1.0 / len(patches)
    else:
        t[sink] = 1.0
    return t


def attention_loss(
    attn: torch.Tensor,
    query_pos: torch.Tensor,
    targets: torch.Tensor,
    rows: torch.Tensor | None = None,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Mean cross-entropy of one head's attention at the query tokens against the targets.

    attn: (B, T, T) attention probabilities of one head (rows: queries); query_pos: (N,) the
    query tokens; targets: (N, T) distributions over the keys; rows: (N,) the batch row of
    each query (default: query i is in row i)."""
    if rows is None:
        rows = torch.arange(len(query_pos))
    rows = attn[rows, query_pos]  # (N, T)
    terms = torch.where(targets > 0, targets * torch.log(rows + eps), torch.zeros_like(rows))
    return -terms.sum(-1).mean()
