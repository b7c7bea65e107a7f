"""Vision-expert actor: the detector checks every claim of every response.

Rows are one response each (image_id, path, response); out come the claims and, per claim,
whether the expert confirmed it and where it found it (normalized xyxy boxes, for grounded
attention). A row may instead carry `phrases` (a list of object phrases, no response): those
are checked as they are (`pairing.probe_phrases`' extra questions). A noisy expert (misses, false
alarms) is for the noise study."""

from __future__ import annotations

import random

import pandas as pd

from actors import isolated, require
from actors.images import read_rows
from groundloop import vocab
from groundloop.genrm import experts
from groundloop.models import load_detector
from groundloop.vocab import Claim


class ExpertActor:
    def __init__(
        self, detector_spec: str, vocabulary: str, miss_rate: float = 0.0, false_alarm_rate: float = 0.0, seed: int = 0
    ) -> None:
        self.detector = load_detector(detector_spec)
        self.vocab = vocab.get(vocabulary)
        self.miss, self.false_alarm = miss_rate, false_alarm_rate
        self.rng = random.Random(seed)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        probes = "phrases" in batch and "response" not in batch
        require(batch, ["path", "phrases" if probes else "response"], "ExpertActor")
        images, errors = read_rows(batch)
        claims, holds, boxes = ([[] for _ in range(len(batch))] for _ in range(3))
        ok = [i for i, e in enumerate(errors) if not e]
        cl = {
            i: [Claim(str(p)) for p in batch["phrases"].iloc[i]]
            if probes
            else self.vocab.claims(batch["response"].iloc[i])
            for i in ok
        }
        queries = {i: experts.expert_queries(cl[i], self.vocab) for i in ok}
        found = isolated(
            lambda rows: self.detector.detect([images[i] for i in rows], [queries[i] for i in rows]),
            ok,
            errors,
            "expert",
        )
        for i, dets in found.items():
            if self.miss or self.false_alarm:
                dets = experts.perturb(dets, queries[i], self.miss, self.false_alarm, self.rng)
            claims[i] = [c.text for c in cl[i]]
            holds[i] = experts.check_claims(cl[i], dets)
            boxes[i] = [[list(b) for b in bs] for bs in experts.claim_boxes(cl[i], dets, self.vocab)]
        return batch.assign(claims=claims, holds=holds, boxes=boxes, error=errors)
