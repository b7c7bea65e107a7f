"""Seeded recipe for the shipped ShapesWorld detector (shape classifier over pixel regions).

python -m recipes.worlds.train_detector --out groundloop/assets/shapesworld/detector
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from groundloop.models.detection import iou
from groundloop.worlds import shapes as world
from groundloop.worlds.detector import ShapeClassifier, ShapesWorldDetector, find_regions


def labelled_regions(n_images: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[tuple[float, str]]]:
    """Regions of generated train scenes, labelled by the annotation they overlap (IoU >= 0.5)."""
    crops, labels, sides = [], [], []
    s = world.IMAGE_SIZE
    for objects, image in world.scenes("train", n_images, seed):
        boxes = [(x0 / s, y0 / s, x1 / s, y1 / s) for x0, y0, x1, y1 in (o.box for o in objects)]
        for r in find_regions(image):
            match = [o for o, b in zip(objects, boxes) if o.color == r.color and iou(b, r.box) >= 0.5]
            if len(match) == 1:
                crops.append(r.crop)
                labels.append(world.SHAPES.index(match[0].shape))
                sides.append((r.side, match[0].size))
    return np.stack(crops), np.array(labels), sides


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n-images", type=int, default=4000)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    t0 = time.time()
    torch.manual_seed(a.seed)
    x, y, sides = labelled_regions(a.n_images, a.seed)
    # The size boundary: midway between the largest small and the smallest large region.
    small = float(np.percentile([s for s, z in sides if z == "small"], 99.5))
    large = float(np.percentile([s for s, z in sides if z == "large"], 0.5))
    size_split = (small + large) / 2
    xt, yt = torch.from_numpy(x)[:, None], torch.from_numpy(y)
    clf = ShapeClassifier()
    opt = torch.optim.AdamW(clf.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(a.seed)
    for step in range(a.steps):
        idx = torch.randint(0, len(yt), (128,), generator=g)
        loss = torch.nn.functional.cross_entropy(clf(xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]  # torch's Tensor.backward is unannotated
        opt.step()
        if step % 300 == 0:
            print(f"step {step} loss {loss.item():.4f}")
    acc = (clf(xt).argmax(-1) == yt).float().mean().item()
    ShapesWorldDetector(clf, size_split=size_split).save_pretrained(a.out)
    print(
        f"{len(yt)} regions, train accuracy {acc:.4f}, size split {size_split} px "
        f"(small <= {small}, large >= {large}); {time.time() - t0:.0f} s -> {a.out}"
    )


if __name__ == "__main__":
    main()
