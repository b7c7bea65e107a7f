"""CLIP actor: the image-text similarity delta of every sentence of every caption row."""

from __future__ import annotations

import pandas as pd

from actors import isolated, require
from actors.images import read_rows
from groundloop.models import load_clip
from groundloop.vimar.similarity import ClipScorer
from groundloop.vimar.value import split_sentences


class ClipActor:
    def __init__(self, clip_spec: str) -> None:
        self.scorer = ClipScorer(*load_clip(clip_spec))

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        require(batch, ["path", "caption"], "ClipActor")
        images, errors = read_rows(batch)
        sentences = [split_sentences(c) for c in batch["caption"]]
        ok = [i for i, e in enumerate(errors) if not e and sentences[i]]
        deltas: list[list[float]] = [[] for _ in sentences]

        def score(rows: list[int]) -> list[list[float]]:
            pairs = [(i, s) for i in rows for s in sentences[i]]
            flat = iter(self.scorer.score([images[i] for i, _ in pairs], [s for _, s in pairs]))
            return [[next(flat) for _ in sentences[i]] for i in rows]

        for i, d in isolated(score, ok, errors, "clip").items():
            deltas[i] = d
        return batch.assign(sentences=sentences, deltas=deltas, error=errors)
