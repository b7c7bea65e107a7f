"""The detector protocol shared by every grounding backend, and box utilities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from PIL import Image

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Detection:
    """One grounded phrase: `box` is normalized xyxy in [0, 1]."""

    phrase: str
    box: Box
    score: float


class Detector(Protocol):
    def detect(self, images: list[Image.Image], phrases: list[list[str]]) -> list[list[Detection]]:
        """For image i, the detections of phrases[i] (after thresholding and NMS)."""
        ...


def iou(a: Box, b: Box) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(dets: list[Detection], iou_threshold: float = 0.5) -> list[Detection]:
    """Greedy non-maximum suppression within each phrase, highest score first."""
    kept: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(k.phrase != d.phrase or iou(k.box, d.box) <= iou_threshold for k in kept):
            kept.append(d)
    return kept


def clip_box(box: torch.Tensor | tuple[float, ...]) -> Box:
    x0, y0, x1, y1 = (min(1.0, max(0.0, float(v))) for v in box)
    return (x0, y0, x1, y1)
