"""Grounding a caption: its object phrases (a `groundloop.vocab.Vocabulary`) -> detector boxes ->
the `<context>` text."""

from __future__ import annotations

from collections.abc import Iterable

from groundloop.models.detection import Detection


def format_box(box: Iterable[float]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in box) + "]"


def grounding_text(detections: list[Detection]) -> str:
    """Detections as context text, in reading order (rows top to bottom, then left to right)."""

    def key(d: Detection) -> tuple[int, float]:
        cy = (d.box[1] + d.box[3]) / 2
        return int(cy * 3), (d.box[0] + d.box[2]) / 2

    return "; ".join(f"{d.phrase} {format_box(d.box)}" for d in sorted(detections, key=key))
