"""Grounding-expert actor: the phrases of each prior caption -> detector boxes -> context text.

phrases_from="sample" grounds each prior's own phrases (the paper); "image" grounds the union
of the phrases of all K priors of the image (column image_priors), a fuller context."""

from __future__ import annotations

import pandas as pd

from actors import isolated, require
from actors.images import read_rows
from groundloop import vocab
from groundloop.eval.captioning import ground
from groundloop.models import load_detector


class GroundingActor:
    def __init__(self, detector_spec: str, vocabulary: str, phrases_from: str = "sample") -> None:
        if phrases_from not in ("sample", "image"):
            raise ValueError(f"phrases_from must be 'sample' or 'image', got {phrases_from!r}")
        self.detector = load_detector(detector_spec)
        self.vocab = vocab.get(vocabulary)
        self.column = "prior" if phrases_from == "sample" else "image_priors"

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        require(batch, ["path", self.column], "GroundingActor")
        images, errors = read_rows(batch)
        ok = [i for i, e in enumerate(errors) if not e]
        captions = [batch[self.column].iloc[i] for i in ok]
        if self.column == "image_priors":
            captions = [list(c) for c in captions]  # arrow hands lists over as arrays
        caption_of = dict(zip(ok, captions))
        # rows asking the same question of the same image (every row of an image when grounding
        # from the image's priors) share one detector call
        first: dict[tuple, int] = {}
        for i in ok:
            first.setdefault((batch["path"].iloc[i], _key(caption_of[i])), i)
        found = isolated(
            lambda rows: ground(self.detector, [images[i] for i in rows], [caption_of[i] for i in rows], self.vocab),
            list(first.values()),
            errors,
            "grounding",
        )
        grounding = [""] * len(batch)
        for i in ok:
            j = first[batch["path"].iloc[i], _key(caption_of[i])]
            if j in found:
                grounding[i] = found[j]
            elif i != j:
                errors[i] = errors[j]
        return batch.assign(grounding=grounding, error=errors)


def _key(caption: str | list[str]) -> str | tuple[str, ...]:
    return caption if isinstance(caption, str) else tuple(caption)
