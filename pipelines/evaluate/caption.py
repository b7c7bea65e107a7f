"""Caption images, optionally with inference-time grounding (iSVP: prior caption -> detector
-> `<context>` prompt -> caption again).

    python pipelines/caption.py --model shapesworld/vlm --grounded --images data/shapes/test/images
    python pipelines/caption.py --model shapesworld/vlm --adapter runs/svp_shapes/iter_2/adapter --images a.png b.png

Prints one JSON line per image; an unreadable image gets an "error" line and the rest go on.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from groundloop import prompts, vocab
from groundloop.data.coco import ImageError, load_image
from groundloop.eval import captioning
from groundloop.models import load_detector, load_vlm
from groundloop.sampling import HFSampler
from pipelines.common import cli

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def image_paths(items: list[str]) -> list[Path]:
    out: list[Path] = []
    for item in items:
        p = Path(item)
        out += sorted(x for x in p.iterdir() if x.suffix.lower() in IMAGE_SUFFIXES) if p.is_dir() else [p]
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    ap = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="shapesworld/vlm")
    ap.add_argument("--adapter")
    ap.add_argument("--images", nargs="+", required=True, help="image files and/or folders")
    ap.add_argument("--grounded", action="store_true", help="iSVP: ground the prior and caption again")
    ap.add_argument("--detector", default="shapesworld/detector")
    ap.add_argument(
        "--grounding-samples",
        type=int,
        default=4,
        help="with --grounded: extra sampled captions per image whose phrases are grounded too",
    )
    ap.add_argument(
        "--vocabulary",
        choices=vocab.NAMES,
        help="object vocabulary the grounding reads captions with (default: shapes for a "
        "shapesworld/ model, else coco)",
    )
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=160)
    a = ap.parse_args(argv)
    for flag, value, low in (
        ("--batch-size", a.batch_size, 1),
        ("--max-new-tokens", a.max_new_tokens, 1),
        ("--grounding-samples", a.grounding_samples, 0),
    ):
        if value < low:
            cli.fail(f"{flag} must be >= {low}, got {value}")
    words = vocab.get(a.vocabulary or ("shapes" if a.model.startswith("shapesworld/") else "coco"))
    sampler = HFSampler(*load_vlm(a.model, adapter=a.adapter), max_new_tokens=a.max_new_tokens)
    detector = load_detector(a.detector) if a.grounded else None
    rows = []
    for batch in captioning.batched(image_paths(a.images), a.batch_size):
        ok, images = [], []
        for p in batch:
            try:
                images.append(load_image(p))
                ok.append(p)
            except ImageError as e:
                rows.append({"image": str(p), "error": str(e)})
                print(json.dumps(rows[-1]), flush=True)
        if not ok:
            continue
        caps = captioning.caption(sampler, images, prompts.BASE_PROMPT, a.batch_size)
        out = [{"image": str(p), "caption": c} for p, c in zip(ok, caps)]
        if detector is not None:
            groundings, guided = captioning.grounded_recaption(
                sampler, detector, images, caps, words, a.batch_size, extra_samples=a.grounding_samples
            )
            out = [
                r | {"prior": r["caption"], "grounding": g, "caption": c} for r, g, c in zip(out, groundings, guided)
            ]
        for r in out:
            print(json.dumps(r), flush=True)
        rows += out
    if rows and all("error" in r for r in rows):
        cli.fail("no image could be read")
    return rows


if __name__ == "__main__":
    main()
