"""Can a value head read a sentence against the image? A probe with clean labels.

Each ground-truth object sentence of a training image ("A small red circle is at the left.")
is paired with a copy whose colour+shape is swapped for a type absent from the image; the
value model (shipped VLM + head) is trained to tell them apart (binary cross-entropy on V),
and the within-image AUC on held-out test images is read every 100 steps. The label is the
annotation, not CLIP, so this isolates the head's ability from the TD target's noise.

Result: benchmarks/results/vimar/value_head_probe_keys.json
(docs/history/2026-12-01-vimar-value-model-before-reward-head-99aea52.md).

    python -m benchmarks.probes.value_head_probe --pool match last --steps 400 \
        --out benchmarks/results/vimar/value_head_probe.json
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.value_discrimination import within_image_auc
from groundloop.data.coco import load_dataset
from groundloop.models import load_vlm
from groundloop.vimar.value import ValueModel, optimizer, split_sentences
from groundloop.worlds import shapes as world
from pipelines.common.training import Images


def pairs(path: str, n: int, rng: random.Random) -> list[tuple[str, str, float, int]]:
    """(image path, sentence, 1 true / 0 swapped, image index)."""
    out = []
    for k, r in enumerate(load_dataset(path)[:n]):
        present = {(o.attributes["color"], o.category) for o in r.objects}
        absent = [t for t in world.object_types() if t not in present]
        for s in split_sentences(r.captions[0]):
            m = re.match(r"A (\w+) (\w+) (\w+) is", s)
            if m:
                c, shape = rng.choice(absent)
                out += [
                    (str(r.path), s, 1.0, k),
                    (str(r.path), s.replace(f"{m.group(2)} {m.group(3)}", f"{c} {shape}", 1), 0.0, k),
                ]
    return out


def run(pool: str, train, test, a) -> list[dict]:
    torch.manual_seed(a.seed)
    name, _, keys = pool.partition(":")  # "match:input" reads the image tokens before the LM
    model = ValueModel(*load_vlm(a.vlm), meta={"pool": name, "match_keys": keys or "last"})
    model.train()
    opt = optimizer(model, a.lr, weight_decay=0.01)
    im = Images()
    y = np.array([t[2] for t in test]) > 0
    image = np.array([t[3] for t in test])
    curve, t0 = [], time.time()
    for step in range(1, a.steps + 1):
        start = ((step - 1) * a.batch_size) % len(train)
        b = train[start : start + a.batch_size]
        out = model(**model.encode([im(p) for p, *_ in b], [s for _, s, *_ in b]))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out, torch.tensor([x[2] for x in b]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == a.steps:
            v = np.array(model.values([im(p) for p, *_ in test], [s for _, s, *_ in test]))
            curve.append(
                {
                    "step": step,
                    "loss": loss.item(),
                    "test_within_image_auc": within_image_auc(v, y, image),
                    "s": time.time() - t0,
                }
            )
            print(pool, json.dumps(curve[-1]), flush=True)
    return curve


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vlm", default="shapesworld/vlm")
    p.add_argument("--train", default="data/value_train")
    p.add_argument("--test", default="data/shapes/test")
    p.add_argument("--pool", nargs="+", default=["match", "last"])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    torch.set_num_threads(2)
    rng = random.Random(a.seed)
    train, test = pairs(a.train, 1500, rng), pairs(a.test, 60, rng)
    rng.shuffle(train)
    res = {
        "settings": vars(a) | {"out": str(a.out)},
        "n_train": len(train),
        "n_test": len(test),
        "curves": {pool: run(pool, train, test, a) for pool in a.pool},
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
