"""Collect the VL-GenRM runs into one table (JSON + Markdown) and the expert-noise plot.

python benchmarks/genrm_summary.py --runs runs --out benchmarks/results/genrm
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

CATS = (
    "hallucination",
    "attribute",
    "reasoning",
    "general",
    "overall",
    # `hallucination` by form (reports written on the first bench have none: "-")
    "hallucination/added",
    "hallucination/swapped",
    "hallucination/swapped_dropped",
)
STUDY = ("genrm_shapes", "genrm_self", "genrm_description", "genrm_noise_*")  # benchmarks/genrm_study.sh


def picks_a(round_dir: Path) -> float | None:
    """How often the judge preferred response A on the bench (for reports written before the
    pipeline recorded it)."""
    f = round_dir / "bench.parquet"
    if not f.exists():
        return None
    import pandas as pd

    b = pd.read_parquet(f)
    return float((b["logp_a"] >= b["logp_b"]).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=Path, default=Path("runs"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/genrm"))
    p.add_argument("--names", nargs="+", default=list(STUDY), help="run folder patterns, in table order")
    a = p.parse_args()
    rows = []
    for rep_file in [f for pattern in a.names for f in sorted(a.runs.glob(f"{pattern}/report.json"))]:
        rep = json.loads(rep_file.read_text())
        cfg = json.loads((rep_file.parent / "config.json").read_text())
        for r in rep["rounds"]:
            rows.append(
                {
                    "run": rep_file.parent.name,
                    "round": r["round"],
                    "labeler": cfg["pairs"]["labeler"],
                    "thought": cfg["pairs"]["thought"],
                    "noise": cfg["pairs"]["miss_rate"],
                    "stage0": cfg.get("stage0", {}).get("steps", 0),
                    # how stage 0's questions were balanced, and its probe questions per image
                    "stage0_data": f"{cfg.get('stage0', {}).get('balance', 'kind')}"
                    f" +{cfg.get('stage0', {}).get('probes', 0)}",
                    "critique": cfg["sampling"].get("critique", "free"),
                    "n_pairs": rep["n_pairs"],
                    **{c: r["bench"].get(c) for c in CATS},
                    "written_verdict": r["bench"].get("written_verdict_overall"),
                    "picks_a": r["bench"].get("picks_a", picks_a(rep_file.parent / f"round{r['round']}")),
                    "stats": r["stats"],
                }
            )
    a.out.mkdir(parents=True, exist_ok=True)
    summary = {"rows": rows}
    bon = a.out / "best_of_16.json"
    if bon.exists():
        summary["best_of_16"] = json.loads(bon.read_text())
    (a.out / "summary.json").write_text(json.dumps(summary, indent=1))
    lines = [
        "| run | stage-0 steps | stage-0 balance +probes | round | labeler | thought | critique | expert noise "
        "| pairs | " + " | ".join(CATS) + " | picks A |",
        "|" + "---|" * (10 + len(CATS)),
    ]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['stage0']} | {r['stage0_data']} | {r['round']} | {r['labeler']} "
            f"| {r['thought']} | {r['critique']} "
            f"| {r['noise']} "
            f"| {r['n_pairs']} | "
            + " | ".join(f"{r[c]:.3f}" if r[c] is not None else "-" for c in CATS)
            + f" | {r['picks_a']:.2f} |"
        )
    (a.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    noise = sorted(
        (r["noise"], r["hallucination"], r["overall"])
        for r in rows
        if r["round"] == 0 and (r["run"] == "genrm_shapes" or r["run"].startswith("genrm_noise_"))
    )
    if len(noise) > 1:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot([n[0] for n in noise], [n[1] for n in noise], "o-", label="hallucination")
        ax.plot([n[0] for n in noise], [n[2] for n in noise], "s--", label="overall")
        ax.axhline(0.5, color="grey", lw=0.8, ls=":", label="chance")
        ax.set_xlabel("expert miss = false-alarm rate")
        ax.set_ylabel("RewardBench accuracy (stage 1)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(a.out / "noise.png", dpi=120)


if __name__ == "__main__":
    main()
