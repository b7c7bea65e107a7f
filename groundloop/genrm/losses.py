"""VL-GenRM's training objectives: the verdict preference, the mixture of fine-tuning and a
correctness-weighted Bradley-Terry term, and margin-based rejection sampling."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def preference(logp_a: torch.Tensor, logp_b: torch.Tensor) -> torch.Tensor:
    """P(A is better) from the log-probabilities of the two verdicts, renormalised over them."""
    return torch.sigmoid(logp_a - logp_b)


def margin(logp_correct: torch.Tensor, logp_wrong: torch.Tensor) -> torch.Tensor:
    """log p(correct verdict) - log p(wrong verdict): > 0 means the judge gets it right."""
    return logp_correct - logp_wrong


def mixture_loss(
    token_logp: torch.Tensor,
    loss_mask: torch.Tensor,
    logp_correct: torch.Tensor,
    logp_wrong: torch.Tensor,
    weight: torch.Tensor,
    lam: float,
) -> torch.Tensor:
    """Fine-tuning loss on the critique and verdict plus lam x a correctness-weighted
    Bradley-Terry term on the verdict.

    token_logp: (B, T) log-prob of each target token; loss_mask: (B, T) 1 on critique and
    verdict tokens; logp_correct / logp_wrong: (B,) log-probs of the right and wrong verdict
    after the critique; weight: (B,) per-example weight of the BT term (1 for a verified-correct
    label, 0 to switch it off for an example).
    """
    sft = -(token_logp * loss_mask).sum() / loss_mask.sum().clamp(min=1)
    bt = -(F.logsigmoid(margin(logp_correct, logp_wrong)) * weight).sum() / weight.sum().clamp(min=1e-8)
    return sft + lam * bt


def margin_threshold(margins: Sequence[float], correct: Sequence[bool], retention: float) -> float:
    """The margin above which a `retention` fraction of all sampled critiques is kept, counting
    only correct ones (so the threshold is never below 0 when enough critiques are correct)."""
    ok = sorted((m for m, c in zip(margins, correct) if c), reverse=True)
    n_keep = int(round(retention * len(margins)))
    if not ok or n_keep <= 0:
        return float("inf")
    return ok[min(n_keep, len(ok)) - 1]


def reject(margins: Sequence[float], correct: Sequence[bool], threshold: float) -> list[bool]:
    """Rejection sampling: keep a critique when its verdict is correct and its margin is at
    least the threshold."""
    if len(margins) != len(correct):
        raise ValueError(f"{len(margins)} margins but {len(correct)} correctness flags")
    return [bool(c) and m >= threshold for m, c in zip(margins, correct)]


def reject_per_label(
    margins: Sequence[float], correct: Sequence[bool], labels: Sequence[str], retention: float
) -> tuple[list[bool], dict[str, float]]:
    """Rejection with the threshold set within each right label's critiques (`margin_threshold`
    per label), so each keeps `retention` of its own. One threshold for all keeps mostly the
    label the judge already leans to (its margins there are larger), and the next round learns
    the lean: in the run that showed it, 2 A-labelled critiques kept for every B-labelled one,
    and the next round picked A for 74 % of the bench pairs (half are A). Returns what is kept
    and each label's threshold."""
    if not len(margins) == len(correct) == len(labels):
        raise ValueError(f"{len(margins)} margins, {len(correct)} correctness flags, {len(labels)} labels")
    keep = [False] * len(margins)
    thresholds = {}
    for label in sorted(set(labels)):
        idx = [i for i, x in enumerate(labels) if x == label]
        thresholds[label] = margin_threshold([margins[i] for i in idx], [correct[i] for i in idx], retention)
        for i, k in zip(idx, reject([margins[i] for i in idx], [correct[i] for i in idx], thresholds[label])):
            keep[i] = k
    return keep, thresholds
