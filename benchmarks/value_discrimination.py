"""Does a value model (or CLIP) tell a caption's true object sentences from its hallucinated ones?

Samples captions of held-out test images from the VLM (8 per image, T 0.2-0.8, top-p 0.9), labels
every object sentence by the annotations (hallucinated: its colour+shape is not in the image)
and reports the AUC of CLIP delta and of V for each value model given: the probability that a
true sentence outscores a hallucinated one (0.5 = chance), over all pairs and over the pairs of
the same image (what a decoder compares).

    python benchmarks/value_discrimination.py --values shapesworld/value runs/x/value \
        --out benchmarks/results/vimar/value_discrimination.json
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import torch

from groundloop import prompts
from groundloop.data.coco import load_dataset, load_image
from groundloop.models import load_clip, load_value, load_vlm
from groundloop.sampling import HFSampler
from groundloop.vimar.similarity import ClipScorer
from groundloop.vimar.value import split_sentences


def auc(x: np.ndarray, ok: np.ndarray) -> float | None:
    """None when the sentences are all true or all hallucinated: no pair to compare."""
    if ok.all() or not ok.any():
        return None
    return float(np.mean(x[ok][:, None] > x[~ok][None, :]))


def within_image_auc(x: np.ndarray, ok: np.ndarray, image: np.ndarray) -> float | None:
    """AUC over the (true, hallucinated) pairs of the same image: what a decoder compares.
    A TD value also carries the expected reward of the sentences still to come, which depends
    on the image (how many objects are left to describe), so the pooled AUC mixes that in."""
    wins = pairs = 0.0
    for i in np.unique(image):
        m = image == i
        t, f = x[m & ok], x[m & ~ok]
        wins += float((t[:, None] > f[None, :]).sum())
        pairs += len(t) * len(f)
    return wins / pairs if pairs else None


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="data/shapes/test")
    p.add_argument("--images", default="100:140", help="slice of the split, start:stop")
    p.add_argument("--values", nargs="+", default=["shapesworld/value"])
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    torch.set_num_threads(2)
    start, stop = map(int, a.images.split(":"))
    recs = load_dataset(a.data)[start:stop]
    sampler = HFSampler(*load_vlm("shapesworld/vlm"), seed=0)
    rows = []
    for n, r in enumerate(recs):
        im = load_image(r.path)
        objs = {(o.attributes["color"], o.category) for o in r.objects}
        caps = sampler.sample([im] * 8, [prompts.BASE_PROMPT] * 8, [""] * 8, [0.2, 0.4, 0.6, 0.8] * 2, 0.9)
        for c in caps:
            for sent in split_sentences(c):
                m = re.match(r"A (\w+) (\w+) (\w+) is", sent)
                if m:
                    rows.append((im, sent, (m.group(2), m.group(3)) in objs, n))
    ok = np.array([r[2] for r in rows])
    image = np.array([r[3] for r in rows])
    ims, sents = [r[0] for r in rows], [r[1] for r in rows]
    clip = np.array(ClipScorer(*load_clip("shapesworld/clip")).score(ims, sents))
    res = {
        "data": a.data,
        "images": a.images,
        "object_sentences": len(rows),
        "hallucinated": int((~ok).sum()),
        "auc": {"clip_delta": auc(clip, ok)},
        "within_image_auc": {"clip_delta": within_image_auc(clip, ok, image)},
    }
    for spec in a.values:
        v = np.array(load_value(spec).values(ims, sents))
        res["auc"][spec] = auc(v, ok)
        res["within_image_auc"][spec] = within_image_auc(v, ok, image)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
