"""Precision and recall of a detector at IoU >= 0.5 on held-out ShapesWorld images.

Queries per image: every present object type ("red circle"), the same with its size
("small red circle"), and as many absent types. A detection is correct when it overlaps,
at IoU >= 0.5, an unmatched true object that fits every word of the query.

    python benchmarks/detector.py --data data/shapes/test --out benchmarks/results/detector.json
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from groundloop.data.coco import load_dataset, load_image
from groundloop.models import load_detector
from groundloop.models.detection import iou
from groundloop.worlds import shapes as world
from groundloop.worlds.detector import parse_phrase


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--detector", default="shapesworld/detector")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = random.Random(a.seed)
    det = load_detector(a.detector)
    records = load_dataset(a.data)
    tp = n_det = n_true = 0
    absent_fp = absent_q = 0
    t0 = time.time()
    for rec in records:
        truth = []
        for o in rec.objects:
            x, y, w, h = o.bbox
            box = (x / rec.width, y / rec.height, (x + w) / rec.width, (y + h) / rec.height)
            truth.append(({"color": o.attributes["color"], "shape": o.category, "size": o.attributes["size"]}, box))
        present = sorted({f"{t['color']} {t['shape']}" for t, _ in truth})
        sized = sorted({f"{t['size']} {t['color']} {t['shape']}" for t, _ in truth})
        absent = [f"{c} {s}" for c, s in world.object_types() if f"{c} {s}" not in present]
        absent = rng.sample(absent, min(len(present), len(absent)))
        queries = present + sized + absent
        dets = det.detect([load_image(rec.path)], [queries])[0]
        for q in queries:
            want = parse_phrase(q)
            gts = [b for t, b in truth if all(t[k] == v for k, v in want.items())]
            mine = [d for d in dets if d.phrase == q]
            n_true += len(gts)
            n_det += len(mine)
            used: set[int] = set()
            for d in mine:
                for j, b in enumerate(gts):
                    if j not in used and iou(d.box, b) >= 0.5:
                        used.add(j)
                        tp += 1
                        break
            if q in absent:
                absent_q += 1
                absent_fp += len(mine)
    res = {
        "detector": a.detector,
        "data": str(a.data),
        "n_images": len(records),
        "precision": tp / max(n_det, 1),
        "recall": tp / max(n_true, 1),
        "n_detections": n_det,
        "n_true_objects_queried": n_true,
        "absent_queries": absent_q,
        "detections_on_absent_queries": absent_fp,
        "seconds_per_image": (time.time() - t0) / max(len(records), 1),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
