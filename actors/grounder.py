"""Grounding-expert actor: the phrases of each prior caption -> detector boxes -> context text."""

from __future__ import annotations

import pandas as pd

from actors import require
from actors.images import read_rows
from groundloop.evaluation import ground
from groundloop.models import load_detector


class GroundingActor:
    def __init__(self, detector_spec: str) -> None:
        self.detector = load_detector(detector_spec)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        require(batch, ["path", "prior"], "GroundingActor")
        images, errors = read_rows(batch)
        ok = [i for i, e in enumerate(errors) if not e]
        texts = ground(self.detector, [images[i] for i in ok], [batch["prior"].iloc[i] for i in ok])
        grounding = [""] * len(batch)
        for i, t in zip(ok, texts):
            grounding[i] = t
        return batch.assign(grounding=grounding, error=errors)
