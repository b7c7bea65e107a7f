"""Judge a VL-GenRM reward model on ShapesWorld-RewardBench or on VL-RewardBench from a local file.

    python pipelines/evaluate_rm.py --reward-model shapesworld/genrm --out runs/rm_eval.json
    python pipelines/evaluate_rm.py --reward-model shapesworld/genrm --bench vlrewardbench \\
        --data /data/vl_rewardbench.parquet --out runs/vlrb.json

A pair counts as correct when the verdict's preference (P(A) from the verdict log-probabilities
after the model's own critique) favours the chosen response; the written verdict's accuracy is
reported too. The report has accuracy per category and overall, and every judgement.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from groundloop import prompts, vocab
from groundloop.data.coco import DataError, load_dataset, load_image
from groundloop.data.vlrewardbench import load_vlrewardbench
from groundloop.genrm import judge as genrm
from groundloop.models import load_reward_model
from groundloop.worlds import reward_bench as rb
from pipelines.common import cli


def shapes_bench(data: Path, per_category: int, seed: int, categories=rb.CATEGORIES):
    records = load_dataset(data.resolve())
    by_id = {r.image_id: r for r in records}
    pairs = rb.build(
        [(r.image_id, rb.scene_of(r.objects)) for r in records], per_category, seed=1000 + seed, categories=categories
    )
    rows = rb.judge_rows([(str(p.image_id), p.category, p.chosen, p.rejected, p.form) for p in pairs], seed)
    return rows, [load_image(by_id[int(r["id"])].path) for r in rows], [prompts.BASE_PROMPT] * len(rows)


def vl_rewardbench(data: Path, seed: int):
    items = load_vlrewardbench(data)
    rows = rb.judge_rows([(p.id, p.category, p.chosen, p.rejected) for p in items], seed)
    return rows, [p.image for p in items], [p.prompt for p in items]


def main(argv: list[str] | None = None) -> dict:
    p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reward-model", default="shapesworld/genrm", help="reward-model folder (adapter + genrm.json)")
    p.add_argument("--base", help="the base VLM, when the folder has no genrm.json")
    p.add_argument("--bench", choices=["shapes", "vlrewardbench"], default="shapes")
    p.add_argument(
        "--data",
        type=Path,
        default=Path("data/shapes/test"),
        help="ShapesWorld split folder, or a VL-RewardBench .parquet/.jsonl file",
    )
    p.add_argument("--per-category", type=int, default=100, help="ShapesWorld-RewardBench pairs per category")
    p.add_argument(
        "--categories",
        nargs="+",
        choices=list(rb.CATEGORIES + rb.DIAGNOSTIC),
        default=list(rb.CATEGORIES),
        help="ShapesWorld-RewardBench categories (the hallucination_* ones: diagnostics, one form of "
        "hallucination each, not in the default)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument(
        "--critique",
        choices=list(genrm.CRITIQUES),
        help="how the judge writes its critique (default: its recipe's sampling.critique, else free)",
    )
    p.add_argument(
        "--both-orders",
        action="store_true",
        help="judge every pair as (A, B) and as (B, A) and average: a judge that only prefers a "
        "position then scores 0 instead of the bench's label split (ties count as wrong)",
    )
    p.add_argument(
        "--vocabulary",
        choices=vocab.NAMES,
        help="the vocabulary claims are read with (default: the one in the reward model's genrm.json)",
    )
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    for flag, value in (
        ("--per-category", a.per_category),
        ("--batch-size", a.batch_size),
        ("--max-new-tokens", a.max_new_tokens),
    ):
        if value < 1:
            cli.fail(f"{flag} must be >= 1, got {value}")
    try:
        rows, images, questions = (
            shapes_bench(a.data, a.per_category, a.seed, a.categories)
            if a.bench == "shapes"
            else vl_rewardbench(a.data, a.seed)
        )
    except (DataError, FileNotFoundError) as e:
        cli.fail(str(e))
    options: dict = {"critique": a.critique} if a.critique else {}
    if a.vocabulary:
        options["vocab"] = vocab.get(a.vocabulary)
    judge = load_reward_model(a.reward_model, base=a.base, max_new_tokens=a.max_new_tokens, **options)
    t = time.time()
    js = judge.judge(images, questions, [r["a"] for r in rows], [r["b"] for r in rows], batch_size=a.batch_size)
    p_a = [j.p_a for j in js]
    if a.both_orders:
        swapped = judge.judge(
            images, questions, [r["b"] for r in rows], [r["a"] for r in rows], batch_size=a.batch_size
        )
        p_a = [(x + 1 - j.p_a) / 2 for x, j in zip(p_a, swapped)]
        correct = [(p > 0.5) if r["label"] == "A" else (p < 0.5) for p, r in zip(p_a, rows)]
    else:
        correct = [(p >= 0.5) == (r["label"] == "A") for p, r in zip(p_a, rows)]
    seconds = time.time() - t
    report = {
        "reward_model": a.reward_model,
        "bench": a.bench,
        "data": str(a.data),
        "n_pairs": len(rows),
        "accuracy": rb.accuracy([r["category"] for r in rows], correct),
        # hallucination by form: the rejected caption adds / swaps in / swaps in and drops an object
        "accuracy_by_form": {
            k: v for k, v in rb.accuracy([r["form"] for r in rows], correct).items() if k not in ("", "overall")
        },
        "written_verdict_accuracy": sum(j.verdict == r["label"] for j, r in zip(js, rows)) / max(1, len(rows)),
        "malformed_verdicts": sum(j.verdict is None for j in js),
        "picks_a": sum(j.p_a >= 0.5 for j in js) / max(1, len(js)),
        "both_orders": a.both_orders,
        "sec_per_pair": seconds / max(1, len(rows)),
        "judgements": [r | {"judgement": j.text, "p_a": p, "correct": c} for r, j, p, c in zip(rows, js, p_a, correct)],
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1))
    print(
        json.dumps(
            {
                k: report[k]
                for k in (
                    "n_pairs",
                    "accuracy",
                    "accuracy_by_form",
                    "written_verdict_accuracy",
                    "malformed_verdicts",
                    "picks_a",
                    "both_orders",
                )
            }
        )
    )
    return report


if __name__ == "__main__":
    main()
