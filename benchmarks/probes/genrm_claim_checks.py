"""How well do a reward model's critiques check claims? Every "yes"/"no" it wrote on the bench,
against the expert's verdict on the same claim (the expert agrees with the annotations on
ShapesWorld: `benchmarks/probes/genrm_pair_truth.py`), and whether its verdict follows its own
critique (prefers the response with fewer "no"); per kind of claim (count, small or large
object), the share of true claims confirmed and of false ones refuted.

    python benchmarks/probes/genrm_claim_checks.py runs/genrm_ga2/round0/bench.parquet \\
        --out benchmarks/results/genrm/claim_checks_ga2.json

Results: benchmarks/results/genrm/claim_checks_pb_checks.json
(docs/history/2026-12-02-genrm-grounded-attention-scaffold-21ee26b.md), claim_checks_phrase.json
and claim_checks_probe.json (docs/history/2026-12-02-genrm-probes-two-sided-tally-ff3bfda.md).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pandas as pd

from groundloop.data.coco import load_image
from groundloop.genrm import experts
from groundloop.models import load_detector
from groundloop.vocab import Claim
from groundloop.vocab.shapes import ShapesVocabulary
from groundloop.worlds import shapes as world

SHAPES = ShapesVocabulary()

CHECK = re.compile(r" (yes|no)(?=[;.])")


def kind(claim: Claim) -> str:
    """count, or an object claim's size word (small / large), or "object" without one."""
    if claim.count is not None:
        return "count"
    first = claim.phrase.split()[0]
    return first if first in world.SIZES else "object"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bench", type=Path, help="a round's bench.parquet (pipelines/genrm.py)")
    p.add_argument("--detector", default="shapesworld/detector")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    det = load_detector(a.detector)
    judged = pd.read_parquet(a.bench)
    n = right = said_no = false = caught = unparsed = decided = follows = 0
    by_kind: dict[str, dict[str, int]] = {}
    for r in judged.itertuples():
        ca, cb = SHAPES.claims(r.a), SHAPES.claims(r.b)
        found = det.detect([load_image(r.path)], [experts.expert_queries(ca + cb, SHAPES)])[0]
        truth = experts.check_claims(ca, found) + experts.check_claims(cb, found)
        checks = [w == "yes" for w in CHECK.findall(r.thought)]
        if len(checks) != len(truth):  # a free critique that did not list the claims
            unparsed += 1
            continue
        for c, chk, t in zip(ca + cb, checks, truth):
            k = by_kind.setdefault(kind(c), {"true": 0, "confirmed": 0, "false": 0, "refuted": 0})
            k["true" if t else "false"] += 1
            k["confirmed" if t else "refuted"] += chk == t
        n += len(truth)
        right += sum(c == t for c, t in zip(checks, truth))
        said_no += sum(not c for c in checks)
        false += sum(not t for t in truth)
        caught += sum(not c and not t for c, t in zip(checks, truth))
        no_a, no_b = sum(not c for c in checks[: len(ca)]), sum(not c for c in checks[len(ca) :])
        if no_a != no_b:
            decided += 1
            follows += (no_a < no_b) == (r.logp_a >= r.logp_b)
    report = {
        "bench": str(a.bench),
        "pairs": len(judged),
        "pairs_unparsed": unparsed,
        "claims": n,
        "check_accuracy": right / max(1, n),
        "says_no_rate": said_no / max(1, n),
        "false_claim_rate": false / max(1, n),
        "false_claims_caught": caught,
        "false_claims": false,
        "pairs_critique_decides": decided,
        "verdict_follows_critique": follows / max(1, decided),
        # per kind of claim: true ones the critique confirmed, false ones it refuted
        "by_kind": {
            k: {
                "true": v["true"],
                "confirmed": v["confirmed"] / max(1, v["true"]),
                "false": v["false"],
                "refuted": v["refuted"] / max(1, v["false"]),
            }
            for k, v in sorted(by_kind.items())
        },
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
