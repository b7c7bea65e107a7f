"""Grounding a caption: its object phrases -> detector boxes -> the `<context>` text."""

from __future__ import annotations

import re
from collections.abc import Iterable

from groundloop.models.detection import Detection
from groundloop.worlds import shapes as world

_SHAPE_WORDS = sorted({w for syns in world.SHAPE_SYNONYMS.values() for w in syns}, key=len,
                      reverse=True)
SHAPES_PHRASE = re.compile(
    r"\b(?:(small|large)\s+)?(" + "|".join(world.COLORS) + r")\s+(" + "|".join(_SHAPE_WORDS) + r")\b",
    re.IGNORECASE,
)
_CANONICAL = {w: s for s, syns in world.SHAPE_SYNONYMS.items() for w in syns}


def extract_phrases(caption: str, pattern: re.Pattern[str] = SHAPES_PHRASE, sizes: bool = False) -> list[str]:
    """Distinct object phrases of a caption in order of first mention, e.g. "red circle".

    With the ShapesWorld pattern a phrase is "colour shape" with the shape in its canonical
    singular form. Sizes are dropped by default: the detector's box already says how big an
    object is, and a wrong size word would make it reject a real object. With sizes=True a
    phrase seen with and without size keeps the sized form ("small red circle").
    """
    out: list[str] = []
    for m in pattern.finditer(caption):
        size, color, shape = (g.lower() if g else g for g in m.groups())
        size = size if sizes else None
        phrase = " ".join(w for w in (size, color, _CANONICAL.get(shape, shape)) if w)
        bare = f"{color} {_CANONICAL.get(shape, shape)}"
        if phrase in out or (size is None and any(p.endswith(bare) for p in out)):
            continue
        if size is not None and bare in out:
            out[out.index(bare)] = phrase
            continue
        out.append(phrase)
    return out


def format_box(box: Iterable[float]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in box) + "]"


def grounding_text(detections: list[Detection]) -> str:
    """Detections as context text, in reading order (rows top to bottom, then left to right)."""
    def key(d: Detection) -> tuple[int, float]:
        cy = (d.box[1] + d.box[3]) / 2
        return int(cy * 3), (d.box[0] + d.box[2]) / 2

    return "; ".join(f"{d.phrase} {format_box(d.box)}" for d in sorted(detections, key=key))
