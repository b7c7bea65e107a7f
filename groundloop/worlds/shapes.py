"""ShapesWorld: a synthetic, COCO-format world where a small VLM can really hallucinate.

Scenes hold 1 to 6 coloured shapes of two sizes, sometimes overlapping. Captions follow the
SVP style ("In the image, ...": one sentence per object with colour, size, position,
counts and a relation). Some object types co-occur on purpose in `train` and much less in
`val`/`test`, so a model trained here learns the prior and hallucinates the partner on
test images that break it, the way COCO-trained VLMs do.

CLI:
    python -m groundloop.worlds.shapes generate --out DIR --split test --n 200 --seed 0
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "cross")
COLORS = {
    "red": (215, 40, 40),
    "green": (40, 160, 60),
    "blue": (45, 85, 215),
    "yellow": (230, 205, 35),
    "purple": (145, 60, 185),
    "orange": (245, 135, 25),
}
SIZES = ("small", "large")
BACKGROUND = (236, 236, 232)
IMAGE_SIZE = 96
# Pixel extents (side of the bounding square) per size.
SIZE_RANGE = {"small": (11, 15), "large": (23, 31)}
# Object types (colour, shape) that co-occur: present(A) makes present(B) likely in train.
PRIOR_PAIRS = (
    (("red", "circle"), ("blue", "square")),
    (("green", "triangle"), ("yellow", "cross")),
    (("purple", "square"), ("orange", "circle")),
    (("blue", "cross"), ("red", "triangle")),
    (("yellow", "circle"), ("green", "square")),
)
# Probability that the partner of a sampled paired type is added to the scene, per split.
PAIR_PROB = {"train": 0.8, "val": 0.2, "test": 0.2}
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven")
POSITIONS = (
    ("top left", "top", "top right"),
    ("left", "center", "right"),
    ("bottom left", "bottom", "bottom right"),
)
CATEGORY_IDS = {s: i + 1 for i, s in enumerate(SHAPES)}
# Words a caption may use for a shape; CHAIR maps them back to the canonical name.
SHAPE_SYNONYMS = {
    "circle": ("circle", "circles", "disc", "discs", "disk", "ball", "balls"),
    "square": ("square", "squares", "box", "boxes"),
    "triangle": ("triangle", "triangles"),
    "cross": ("cross", "crosses", "plus", "pluses"),
}


@dataclass(frozen=True)
class SceneObject:
    shape: str
    color: str
    size: str
    box: tuple[int, int, int, int]  # pixel xyxy, inclusive-exclusive

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"

    @property
    def center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2


def object_types() -> list[tuple[str, str]]:
    return [(c, s) for c in COLORS for s in SHAPES]


def _partner(color: str, shape: str) -> tuple[str, str] | None:
    for a, b in PRIOR_PAIRS:
        if (color, shape) == a:
            return b
        if (color, shape) == b:
            return a
    return None


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection area over the smaller box's area."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / small


def _grow(b: tuple[int, int, int, int], m: int = 3) -> tuple[int, int, int, int]:
    return (b[0] - m, b[1] - m, b[2] + m, b[3] + m)


def sample_scene(rng: random.Random, split: str) -> list[SceneObject]:
    """Sample object types with co-occurrence priors, then place them with bounded overlap."""
    n = rng.randint(1, 6)
    types: list[tuple[str, str]] = []
    while len(types) < n:
        t = rng.choice(object_types())
        types.append(t)
        partner = _partner(*t)
        if partner and len(types) < n and rng.random() < PAIR_PROB[split]:
            types.append(partner)
    objects: list[SceneObject] = []
    for color, shape in types:
        size = rng.choice(SIZES)
        for _ in range(200):
            side = rng.randint(*SIZE_RANGE[size])
            x0 = rng.randint(1, IMAGE_SIZE - side - 1)
            y0 = rng.randint(1, IMAGE_SIZE - side - 1)
            box = (x0, y0, x0 + side, y0 + side)
            # Overlap is allowed (a small object may sit on a large one of another colour),
            # but never so much that an object is mostly hidden.
            # Same-coloured objects keep a gap, so their pixels never touch.
            ok = all(
                (_overlap(box, o.box) == 0.0 and (o.color != color or _overlap(_grow(box), o.box) == 0.0))
                or (o.color != color and o.size != size and _overlap(box, o.box) < 0.5)
                for o in objects
            )
            if ok:
                objects.append(SceneObject(shape, color, size, box))
                break
    return objects


def _draw_shape(draw: ImageDraw.ImageDraw, obj: SceneObject, fill: int | tuple[int, ...]) -> None:
    x0, y0, x1, y1 = obj.box
    x1, y1 = x1 - 1, y1 - 1
    if obj.shape == "circle":
        draw.ellipse((x0, y0, x1, y1), fill=fill)
    elif obj.shape == "square":
        draw.rectangle((x0, y0, x1, y1), fill=fill)
    elif obj.shape == "triangle":
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)
    elif obj.shape == "cross":
        w = x1 - x0
        t = max(2, round(w / 3))
        cx0 = x0 + (w - t) // 2
        draw.rectangle((cx0, y0, cx0 + t, y1), fill=fill)
        draw.rectangle((x0, y0 + (w - t) // 2, x1, y0 + (w - t) // 2 + t), fill=fill)
    else:
        raise ValueError(f"unknown shape {obj.shape!r}")


def render(objects: list[SceneObject], seed: int) -> Image.Image:
    """Large objects first so small ones stay fully visible; mild pixel noise on top."""
    img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for obj in sorted(objects, key=lambda o: o.size != "large"):
        _draw_shape(draw, obj, COLORS[obj.color])
    arr = np.asarray(img).astype(np.int16)
    noise = np.random.default_rng(seed).integers(-10, 11, size=arr.shape)
    return Image.fromarray(np.clip(arr + noise, 0, 255).astype(np.uint8))


def position_words(obj: SceneObject) -> str:
    cx, cy = obj.center
    col = min(2, int(cx * 3 / IMAGE_SIZE))
    row = min(2, int(cy * 3 / IMAGE_SIZE))
    return POSITIONS[row][col]


def _relation(a: SceneObject, b: SceneObject) -> str:
    """Where a is relative to b, by the dominant axis of their centres."""
    if _overlap(a.box, b.box) > 0:
        return "on" if a.size == "small" else "under"
    dx = a.center[0] - b.center[0]
    dy = a.center[1] - b.center[1]
    if abs(dx) >= abs(dy):
        return "to the right of" if dx > 0 else "to the left of"
    return "below" if dy > 0 else "above"


def _plural(shape: str, k: int) -> str:
    if k == 1:
        return f"one {shape}"
    return f"{NUMBER_WORDS[k]} {'crosses' if shape == 'cross' else shape + 's'}"


def reading_order(objects: list[SceneObject]) -> list[SceneObject]:
    return sorted(objects, key=lambda o: (int(o.center[1] * 3 / IMAGE_SIZE), o.center[0]))


def caption(objects: list[SceneObject]) -> str:
    """The detailed SVP-style caption: a count sentence, then one sentence per object."""
    objs = reading_order(objects)
    counts = {s: sum(o.shape == s for o in objs) for s in SHAPES}
    parts = [_plural(s, k) for s, k in counts.items() if k]
    listing = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    noun = "object" if len(objs) == 1 else "objects"
    sentences = [
        f"In the image, there {'is' if len(objs) == 1 else 'are'} {NUMBER_WORDS[len(objs)]} {noun}, {listing}."
    ]
    for i, o in enumerate(objs):
        s = f"A {o.size} {o.color} {o.shape} is at the {position_words(o)}"
        if i > 0:
            s += f", {_relation(o, objs[i - 1])} the {objs[i - 1].name}"
        sentences.append(s + ".")
    return " ".join(sentences)


def short_caption(objects: list[SceneObject]) -> str:
    names = [f"a {o.size} {o.name}" for o in reading_order(objects)]
    listing = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"A picture of {listing}."


def object_sentence(o: SceneObject) -> str:
    """The single-object sentence CLIP is trained and evaluated on."""
    return f"A {o.size} {o.color} {o.shape} is at the {position_words(o)}."


def scenes(split: str, n: int, seed: int) -> Iterator[tuple[list[SceneObject], Image.Image]]:
    """n (objects, image) pairs; the same (split, seed) always gives the same scenes."""
    if split not in PAIR_PROB:
        raise ValueError(f"split must be one of {sorted(PAIR_PROB)}, got {split!r}")
    # Distinct streams per split so train/val/test with the same seed never share scenes.
    rng = random.Random(f"{seed}-{split}")
    for _ in range(n):
        objects = sample_scene(rng, split)
        yield objects, render(objects, seed=rng.randrange(2**31))


def generate(out: Path, split: str, n: int, seed: int) -> None:
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images: list[dict[str, object]] = []
    annotations: list[dict[str, object]] = []
    captions: list[dict[str, object]] = []
    for i, (objects, image) in enumerate(scenes(split, n, seed)):
        image_id = i + 1
        file_name = f"{split}_{image_id:06d}.png"
        image.save(out / "images" / file_name)
        images.append({"id": image_id, "file_name": file_name, "width": IMAGE_SIZE, "height": IMAGE_SIZE})
        for o in objects:
            x0, y0, x1, y1 = o.box
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": CATEGORY_IDS[o.shape],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                    "color": o.color,
                    "size": o.size,
                    "position": position_words(o),
                }
            )
        for text in (caption(objects), short_caption(objects)):
            captions.append({"id": len(captions) + 1, "image_id": image_id, "caption": text})
    info = {"description": f"ShapesWorld {split}", "version": "1", "seed": seed, "split": split}
    cats = [{"id": CATEGORY_IDS[s], "name": s, "supercategory": "shape"} for s in SHAPES]
    (out / "instances.json").write_text(
        json.dumps({"info": info, "images": images, "annotations": annotations, "categories": cats})
    )
    (out / "captions.json").write_text(json.dumps({"info": info, "images": images, "annotations": captions}))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m groundloop.worlds.shapes")
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="write a COCO-format ShapesWorld split")
    g.add_argument("--out", required=True, type=Path)
    g.add_argument("--split", required=True, choices=sorted(PAIR_PROB))
    g.add_argument("--n", type=int, required=True)
    g.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    generate(a.out, a.split, a.n, a.seed)
    print(f"wrote {a.n} {a.split} images to {a.out}")


if __name__ == "__main__":
    main()


def one_attribute_variants(o: SceneObject, objects: list[SceneObject]) -> list[str]:
    """Sentences that change exactly one attribute of o (colour, shape, size or position)
    and are false for the scene: no object in it fits the changed sentence."""
    true = {(x.size, x.color, x.shape, position_words(x)) for x in objects}
    pos = position_words(o)
    cands = (
        [(o.size, c, o.shape, pos) for c in COLORS if c != o.color]
        + [(o.size, o.color, s, pos) for s in SHAPES if s != o.shape]
        + [(z, o.color, o.shape, pos) for z in SIZES if z != o.size]
        + [(o.size, o.color, o.shape, p) for row in POSITIONS for p in row if p != pos]
    )
    return [f"A {z} {c} {s} is at the {p}." for z, c, s, p in cands if (z, c, s, p) not in true]


def label_map(objects: list[SceneObject], instances: bool = False) -> np.ndarray:
    """(H, W) int map of what each pixel shows: 0 background, 1 + index in object_types()
    for an object (or 1 + index in `objects` when `instances`), drawn in `render`'s order so
    occlusion matches the image."""
    types = object_types()
    canvas = Image.new("L", (IMAGE_SIZE, IMAGE_SIZE), 0)
    draw = ImageDraw.Draw(canvas)
    order = sorted(range(len(objects)), key=lambda i: objects[i].size != "large")
    for i in order:
        obj = objects[i]
        _draw_shape(draw, obj, 1 + (i if instances else types.index((obj.color, obj.shape))))
    return np.asarray(canvas, dtype=np.int64)


def patch_labels(
    objects: list[SceneObject], patch: int, min_fraction: float = 0.1, instances: bool = False
) -> np.ndarray:
    """(H/patch * W/patch,) label per image patch, row-major: the object type (or, with
    `instances`, 1 + the object's index) covering most of the patch, or 0 when objects cover
    less than `min_fraction` of it."""
    lm = label_map(objects, instances)
    g = IMAGE_SIZE // patch
    n = (len(objects) if instances else len(object_types())) + 1
    onehot = np.eye(n, dtype=np.int32)[lm]  # (H, W, C)
    counts = onehot.reshape(g, patch, g, patch, -1).sum((1, 3))  # (g, g, C)
    fg = counts[..., 1:]
    label = fg.argmax(-1) + 1
    label[fg.sum(-1) < min_fraction * patch * patch] = 0
    return cast(np.ndarray, label.reshape(-1))
