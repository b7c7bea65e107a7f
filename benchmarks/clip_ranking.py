"""Does CLIP rank an object's true sentence above 9 sentences that differ in one attribute?

For every object of every held-out image: the true sentence ("A small red circle is at the
top left.") and 9 variants, each changing colour, shape, size or position and false for the
image; success when the true sentence has the highest similarity.

    python benchmarks/clip_ranking.py --data data/shapes/test --out benchmarks/results/clip_ranking.json
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path

from groundloop.data.coco import load_dataset, load_image
from groundloop.models import load_clip
from groundloop.vimar.similarity import ClipScorer
from groundloop.worlds import shapes as world


def scene_objects(rec) -> list[world.SceneObject]:
    return [
        world.SceneObject(
            o.category,
            o.attributes["color"],
            o.attributes["size"],
            (int(o.bbox[0]), int(o.bbox[1]), int(o.bbox[0] + o.bbox[2]), int(o.bbox[1] + o.bbox[3])),
        )
        for o in rec.objects
    ]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--clip", default="shapesworld/clip")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = random.Random(a.seed)
    scorer = ClipScorer(*load_clip(a.clip))
    t0 = time.time()
    hits = n = 0
    wins_by_kind: Counter[str] = Counter()
    losses_by_kind: Counter[str] = Counter()
    for rec in load_dataset(a.data):
        objects = scene_objects(rec)
        image = load_image(rec.path)
        for o in objects:
            true = world.object_sentence(o)
            variants = rng.sample(world.one_attribute_variants(o, objects), 9)
            sims = scorer.similarity([image], [true] + variants)[0]
            n += 1
            hits += int(sims.argmax()) == 0
            best_wrong = variants[int(sims[1:].argmax())]
            kind = next(
                (
                    k
                    for k, w in (("colour", o.color), ("shape", o.shape), ("size", o.size))
                    if f" {w} " not in f" {best_wrong[:-1]} "
                ),
                "position",
            )
            (wins_by_kind if sims[0] > sims[1:].max() else losses_by_kind)[kind] += 1
    res = {
        "clip": a.clip,
        "data": str(a.data),
        "n_objects": n,
        "top1_accuracy": hits / n,
        "losses_by_changed_attribute": dict(losses_by_kind),
        "seconds": time.time() - t0,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
