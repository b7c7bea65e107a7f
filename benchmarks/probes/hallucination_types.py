"""Why does a captioner hallucinate in ShapesWorld? Classify every hallucinated mention of a
captions file (from pipelines/evaluate.py or an SVP run) against the split's annotations:
  partner       a co-occurrence partner (PRIOR_PAIRS) of an object that is present
  wrong_colour  a present shape named with a colour no object of that shape has
  wrong_shape   a present colour on a shape no object of that colour has
  other         anything else

    python benchmarks/probes/hallucination_types.py --data data/shapes/test \
        runs/svp_shapes/iter_1/metrics.captions.jsonl

Result: benchmarks/results/svp_shapes/hallucination_types.jsonl (docs/results/svp.md).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from groundloop import vocab as vocab_lib
from groundloop.data.coco import load_dataset
from groundloop.worlds import shapes as world


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("captions", nargs="+", type=Path)
    a = p.parse_args()
    recs = {r.image_id: r for r in load_dataset(a.data)}
    vocab = vocab_lib.for_records(list(recs.values()))
    partner: dict[str, set[str]] = {}
    for x, y in world.PRIOR_PAIRS:
        partner.setdefault(" ".join(x), set()).add(" ".join(y))
        partner.setdefault(" ".join(y), set()).add(" ".join(x))
    for f in a.captions:
        counts: Counter[str] = Counter()
        for line in f.read_text().splitlines():
            d = json.loads(line)
            truth = vocab.truth_labels(recs[d["image_id"]])
            for m in vocab.mentions(d["caption"]):
                colour, shape = m.split()[0], m.split()[-1]
                if m in truth:
                    counts["correct"] += 1
                elif any(m in partner.get(t, ()) for t in truth):
                    counts["partner"] += 1
                elif any(t.split()[-1] == shape for t in truth):
                    counts["wrong_colour"] += 1
                elif any(t.split()[0] == colour for t in truth):
                    counts["wrong_shape"] += 1
                else:
                    counts["other"] += 1
        print(json.dumps({"captions": str(f), **counts}))


if __name__ == "__main__":
    main()
