"""The ShapesWorld grounding expert: looks at pixels only, never at annotations.

Pipeline: assign pixels to the nearest palette colour, split each colour into connected
regions, classify each region's shape with a small trained network (mask crop -> shape),
read the size off the region's pixel extent, then answer phrase queries such as
"red circle" or "small blue square" with the regions that match every word given.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from scipy import ndimage
from torch import nn

from groundloop.models.detection import Detection, nms
from groundloop.worlds import shapes as world

CROP = 16


@dataclass(frozen=True)
class Region:
    color: str
    box: tuple[float, float, float, float]  # normalized xyxy
    side: float  # largest pixel extent, in pixels of a 96 px image
    crop: np.ndarray  # (CROP, CROP) float mask


class ShapeClassifier(nn.Module):
    """Mask crop (B, 1, 16, 16) -> shape logits (B, n_shapes)."""

    def __init__(self, n_shapes: int = len(world.SHAPES), hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, hidden, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(hidden * (CROP // 4) ** 2, n_shapes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.net(x))


def find_regions(image: Image.Image, max_color_dist: float = 60.0, min_pixels: int = 20) -> list[Region]:
    """Connected single-colour regions of a ShapesWorld-like image, any size or mode."""
    rgb = np.asarray(
        image.convert("RGB").resize((world.IMAGE_SIZE, world.IMAGE_SIZE), Image.Resampling.NEAREST)
    ).astype(np.float32)
    palette = np.array(list(world.COLORS.values()), dtype=np.float32)
    dist = np.linalg.norm(rgb[:, :, None, :] - palette[None, None], axis=-1)  # (H, W, C)
    nearest = dist.argmin(-1)
    valid = dist.min(-1) < max_color_dist
    regions: list[Region] = []
    size = float(world.IMAGE_SIZE)
    for ci, color in enumerate(world.COLORS):
        labels, n = ndimage.label(valid & (nearest == ci))
        for sl, k in zip(ndimage.find_objects(labels), range(1, n + 1)):
            mask = labels[sl] == k
            if mask.sum() < min_pixels:
                continue
            ys, xs = sl
            crop = (
                np.asarray(
                    Image.fromarray(mask.astype(np.uint8) * 255).resize((CROP, CROP), Image.Resampling.BILINEAR),
                    dtype=np.float32,
                )
                / 255.0
            )
            box = (xs.start / size, ys.start / size, xs.stop / size, ys.stop / size)
            regions.append(Region(color, box, float(max(mask.shape)), crop))
    return regions


def parse_phrase(phrase: str) -> dict[str, str]:
    """The colour, size and shape words of a query; unknown words are ignored."""
    found: dict[str, str] = {}
    for w in re.findall(r"[a-z]+", phrase.lower()):
        if w in world.COLORS:
            found["color"] = w
        elif w in world.SIZES:
            found["size"] = w
        else:
            for shape, syns in world.SHAPE_SYNONYMS.items():
                if w in syns:
                    found["shape"] = shape
    return found


class ShapesWorldDetector:
    """`Detector` for ShapesWorld; `score_threshold` applies to the shape probability."""

    def __init__(
        self, classifier: ShapeClassifier, size_split: float, score_threshold: float = 0.5, nms_iou: float = 0.5
    ) -> None:
        self.classifier = classifier.eval()
        self.size_split = size_split
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou

    @classmethod
    def from_pretrained(cls, folder: str | Path, **overrides: float) -> ShapesWorldDetector:
        folder = Path(folder)
        cfg = json.loads((folder / "config.json").read_text())
        clf = ShapeClassifier(hidden=cfg["hidden"])
        clf.load_state_dict(load_file(str(folder / "model.safetensors")))
        kw = {"score_threshold": cfg.get("score_threshold", 0.5), **overrides}
        return cls(clf, size_split=cfg["size_split"], **kw)

    def save_pretrained(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file(self.classifier.state_dict(), str(folder / "model.safetensors"))
        hidden = self.classifier.net[0].out_channels
        (folder / "config.json").write_text(
            json.dumps(
                {
                    "detector_type": "shapesworld",
                    "hidden": hidden,
                    "size_split": self.size_split,
                    "score_threshold": self.score_threshold,
                    "shapes": list(world.SHAPES),
                },
                indent=1,
            )
        )

    @torch.no_grad()
    def describe(self, image: Image.Image) -> list[tuple[Region, str, str, float]]:
        """Every region with its (shape, size, shape probability)."""
        regions = find_regions(image)
        if not regions:
            return []
        crops = torch.from_numpy(np.stack([r.crop for r in regions]))[:, None]
        probs = self.classifier(crops).softmax(-1)
        out = []
        for r, p in zip(regions, probs):
            k = int(p.argmax())
            size = "large" if r.side >= self.size_split else "small"
            out.append((r, world.SHAPES[k], size, float(p[k])))
        return out

    def detect(self, images: list[Image.Image], phrases: list[list[str]]) -> list[list[Detection]]:
        if len(images) != len(phrases):
            raise ValueError(f"{len(images)} images but {len(phrases)} phrase lists")
        return [self.match(self.describe(im), qs) for im, qs in zip(images, phrases)]

    def match(self, found: list[tuple[Region, str, str, float]], queries: list[str]) -> list[Detection]:
        """Answer phrase queries from `describe`'s regions (split out so callers can cache)."""
        dets = []
        for q in queries:
            want = parse_phrase(q)
            if not want:
                continue
            for r, shape, size, p in found:
                got = {"color": r.color, "shape": shape, "size": size}
                if p >= self.score_threshold and all(got[k] == v for k, v in want.items()):
                    dets.append(Detection(q, r.box, p))
        return nms(dets, self.nms_iou)
