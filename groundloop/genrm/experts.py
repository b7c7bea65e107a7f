"""VL-GenRM's vision-expert side: what to ask the detector about a response's claims, and the
expert's verdict on each claim (`Checked`)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from groundloop.models.detection import Detection
from groundloop.vocab import Claim, Vocabulary


def expert_queries(claims: Sequence[Claim], vocab: Vocabulary) -> list[str]:
    """Phrases to ask the detector: each claim's phrase (the object, or what a count counts)
    and what to look at for it (`vocab.look_phrase`)."""
    return list(dict.fromkeys([c.phrase for c in claims] + [vocab.look_phrase(c) for c in claims]))


def check_claims(claims: Sequence[Claim], detections: Sequence[Detection]) -> list[bool]:
    """Each claim against the detector's answer to `expert_queries(claims)`: an object claim
    holds when its phrase was detected, a count claim when the shape was detected that often."""
    found: dict[str, int] = {}
    for d in detections:
        found[d.phrase] = found.get(d.phrase, 0) + 1
    return [found.get(c.phrase, 0) == c.count if c.count is not None else found.get(c.phrase, 0) > 0 for c in claims]


def claim_boxes(
    claims: Sequence[Claim], detections: Sequence[Detection], vocab: Vocabulary
) -> list[list[tuple[float, ...]]]:
    """Where the expert found what each claim is about (its `vocab.look_phrase`, asked by
    `expert_queries`): the normalized xyxy boxes of those detections, none when it found none."""
    return [[tuple(d.box) for d in detections if d.phrase == vocab.look_phrase(c)] for c in claims]


def perturb(
    detections: Sequence[Detection],
    queries: Sequence[str],
    miss_rate: float,
    false_alarm_rate: float,
    rng: random.Random,
) -> list[Detection]:
    """A noisier expert: each detection is dropped with probability miss_rate, and each
    queried phrase gains a spurious detection with probability false_alarm_rate."""
    kept = [d for d in detections if rng.random() >= miss_rate]
    extra = [Detection(q, (0.0, 0.0, 0.1, 0.1), 1.0) for q in queries if rng.random() < false_alarm_rate]
    return kept + extra


@dataclass(frozen=True)
class Checked:
    """A response with its claims and the expert's verdict on each."""

    response: str
    claims: tuple[Claim, ...]
    holds: tuple[bool, ...]

    @property
    def texts(self) -> list[str]:
        """The claims as the critique writes them."""
        return [c.text for c in self.claims]

    @property
    def refuted(self) -> int:
        return sum(not h for h in self.holds)

    @property
    def verified(self) -> bool:
        """Every claim checked out (and there was at least one)."""
        return bool(self.claims) and self.refuted == 0
