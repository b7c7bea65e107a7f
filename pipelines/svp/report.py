"""SVP evaluation per iteration and the run report (report.json, report.md, a CHAIR/recall plot)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from groundloop import config as config_lib
from groundloop import prompts, vocab
from groundloop.data.coco import load_dataset
from groundloop.eval import captioning, metrics
from groundloop.models import load_vlm
from groundloop.sampling import HFSampler
from pipelines.svp.config import SVPConfig

KEYS = ("chair_s", "chair_i", "recall", "bleu4", "cider")


def evaluate_to(cfg: SVPConfig, adapter: str | None, out: Path, vocabulary: str = "") -> dict:
    """Greedy captions of the held-out split with the (adapted) VLM; metrics to `out`."""
    return evaluate_greedy(
        cfg.model.vlm,
        adapter,
        Path(cfg.data.eval_path),
        cfg.data.eval_n_images,
        cfg.sampling.max_new_tokens,
        out,
        vocabulary,
    )


def evaluate_greedy(
    vlm: str, adapter: str | None, data: Path, n_images: int, max_new_tokens: int, out: Path, vocabulary: str = ""
) -> dict:
    """Greedy captions of `n_images` of a held-out split; metrics to `out`, captions beside it."""
    records = load_dataset(data)[:n_images]
    loaded, errors = captioning.load_images(records)
    recs, images = [r for r, _ in loaded], [im for _, im in loaded]
    sampler = HFSampler(*load_vlm(vlm, adapter=adapter), max_new_tokens=max_new_tokens)
    caps = captioning.caption(sampler, images, prompts.BASE_PROMPT)
    m = captioning.caption_metrics(recs, caps, vocab.for_records(recs, vocabulary)) | {"n_errors": len(errors)}
    out.write_text(json.dumps(m, indent=1))
    out.with_suffix(".captions.jsonl").write_text(
        "".join(json.dumps({"image_id": r.image_id, "caption": c}) + "\n" for r, c in zip(recs, caps))
    )
    return m


def sample_quality(cfg: SVPConfig, scored: pd.DataFrame, vocabulary: str = "") -> dict:
    """CHAIR_i and recall of the prior, guided and selected captions of one iteration, against
    the training images' own annotations: does grounding + scoring pick cleaner captions?"""
    return sample_quality_parts(cfg, [scored], vocabulary)


def sample_quality_parts(cfg: SVPConfig, parts: Iterable[pd.DataFrame], vocabulary: str = "") -> dict:
    """`sample_quality` over the scored rows in parts (e.g. the part files of a streamed stage),
    one part in memory at a time: CHAIR's counts are summed, then divided."""
    records = load_dataset(Path(cfg.data.path))
    by_id = {r.image_id: r for r in records}
    words = vocab.for_records(records, vocabulary)
    sums: dict[str, dict[str, float]] = {}
    for scored in parts:
        good = scored[(scored["error"] == "") & scored["image_id"].map(lambda i: int(i) in by_id).astype(bool)]
        for name, col, rows in (
            ("prior", "prior", good),
            ("guided", "guided", good),
            ("selected", "guided", good[good["selected"]]),
        ):
            if len(rows):
                truths = [words.truth_labels(by_id[int(i)]) for i in rows["image_id"]]
                m = metrics.chair(rows[col].tolist(), truths, words)
                s = sums.setdefault(name, {"n": 0, "mentions": 0, "hallucinated": 0, "truth": 0, "recalled": 0})
                s["n"] += len(rows)
                s["mentions"] += m["n_mentions"]
                s["hallucinated"] += m["n_hallucinated"]
                s["truth"] += m["n_truth"]
                s["recalled"] += round(m["recall"] * m["n_truth"])
    return {
        name: {
            "n": s["n"],
            "chair_i": s["hallucinated"] / s["mentions"] if s["mentions"] else 0.0,
            "recall": s["recalled"] / s["truth"] if s["truth"] else 0.0,
        }
        for name, s in sums.items()
    }


def write(cfg: SVPConfig, run_dir: Path, timings: dict[str, float], ablations: dict | None = None) -> dict:
    base = json.loads((run_dir / "base_metrics.json").read_text())
    iters = []
    for it in range(1, cfg.svp.iterations + 1):
        f = run_dir / f"iter_{it}" / "metrics.json"
        if f.exists():
            q = run_dir / f"iter_{it}" / "sample_quality.json"
            iters.append(
                {
                    "iteration": it,
                    "metrics": json.loads(f.read_text()),
                    "samples": json.loads(q.read_text()) if q.exists() else {},
                    "adapter": str(run_dir / f"iter_{it}" / "adapter"),
                }
            )
    report = {
        "run": cfg.run.name,
        "settings": config_lib.to_dict(cfg),
        "base": base,
        "iterations": iters,
        "timings_s": timings,
    }
    if ablations:
        report["ablations"] = ablations
    (run_dir / "report.json").write_text(json.dumps(report, indent=1))
    _plot(base, iters, run_dir / "chair_recall.png")
    lines = [
        f"# SVP run `{cfg.run.name}`",
        "",
        "| iteration | " + " | ".join(KEYS) + " |",
        "|---" * (len(KEYS) + 1) + "|",
    ]
    rows = (
        [("base", base)]
        + [(str(i["iteration"]), i["metrics"]) for i in iters]
        + [(f"ablation {n} (iteration {m.get('iteration')})", m) for n, m in (ablations or {}).items()]
    )
    for name, m in rows:
        lines.append(f"| {name} | " + " | ".join(f"{m.get(k, float('nan')):.3f}" for k in KEYS) + " |")
    lines += ["", "Training-split samples per iteration (CHAIR_i / recall against the annotations):", ""]
    for i in iters:
        lines.append(
            f"- iteration {i['iteration']}: "
            + ", ".join(f"{k} {v['chair_i']:.3f} / {v['recall']:.3f} (n={v['n']})" for k, v in i["samples"].items())
        )
    lines += [
        "",
        "![CHAIR_i and recall per iteration](chair_recall.png)",
        "",
        "Stage timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()),
    ]
    (run_dir / "report.md").write_text("\n".join(lines) + "\n")
    return report


def _plot(base: dict, iters: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [0] + [i["iteration"] for i in iters]
    fig, ax = plt.subplots(figsize=(4.5, 3))
    for key in ("chair_i", "recall"):
        ax.plot(xs, [base[key]] + [i["metrics"][key] for i in iters], marker="o", label=key)
    ax.set_xlabel("SVP iteration")
    ax.set_xticks(xs)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
