"""How right are the expert's pair labels? Every claim of every response in a VL-GenRM run is
checked again against the image annotations (the truth, which the pipeline never reads).
Prints one JSON line.

Result: benchmarks/results/genrm/pair_truth.json (docs/history/2026-12-02-genrm-factored-critiques-fb1ea00.md).

    python benchmarks/probes/genrm_pair_truth.py --run runs/genrm_shapes --data data/genrm_train \
        > benchmarks/results/genrm/pair_truth.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from groundloop.data.coco import load_dataset
from groundloop.worlds.reward_bench import claim_truth as truth_holds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    a = p.parse_args()
    objects = {r.image_id: r.objects for r in load_dataset(a.data.resolve())}
    s = pd.read_parquet(a.run / "samples.parquet")
    s = s[s["error"] == ""]
    agree = [list(h) == truth_holds(objects[i], r) for i, r, h in zip(s["image_id"], s["response"], s["holds"])]
    pairs = pd.read_parquet(a.run / "pairs.parquet")
    right = []
    for r in pairs.itertuples():
        good, bad = (r.a, r.b) if r.label == "A" else (r.b, r.a)
        right.append(all(truth_holds(objects[r.image_id], good)) and not all(truth_holds(objects[r.image_id], bad)))
    rep = {
        "run": str(a.run),
        "responses": len(s),
        "expert_matches_annotations": sum(agree) / len(s),
        "pairs": len(pairs),
        "pair_labels_confirmed": sum(right) / max(1, len(pairs)),
    }
    print(json.dumps(rep))


if __name__ == "__main__":
    main()
