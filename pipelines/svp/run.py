"""SVP (sampling-based visual projection) self-training as a Ray job.

Per iteration: Ray Data streams the training images through VLM sampler actors (K prior
captions each), grounding-expert actors (phrases -> boxes -> <context> text), the sampler
again (one guided caption per prior) and scorer actors (S(q,p), Delta(q,p) by teacher
forcing); the top fraction per image is kept; Ray Train LoRA-fine-tunes the VLM on
(plain prompt, kept caption); the adapted model is evaluated and samples the next round.

    python pipelines/svp.py --config configs/svp_shapes.yaml svp.iterations=2 sampling.k=8
    ray job submit --working-dir . -- python pipelines/svp.py --config configs/svp_shapes.yaml

Re-running with the same run.name resumes after the last finished stage; a sampling stage cut
short resumes per image (the rows stream into iter_N/scored.parts/ as they are produced).
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import pandas as pd
import ray

from actors.grounder import GroundingActor
from actors.ranker import RewardRankActor
from actors.sampler import SamplerActor
from actors.scorer import ScorerActor
from groundloop import vocab
from groundloop.data.coco import load_dataset
from groundloop.svp.scoring import top_fraction
from pipelines.common import cli
from pipelines.common.pools import ActorStage
from pipelines.common.sink import PartSink
from pipelines.common.stages import Stages, fingerprint, write_json
from pipelines.svp import report as svp_report
from pipelines.svp import train as svp_train
from pipelines.svp.config import SVPConfig

ACTORS = {"prior": SamplerActor, "grounder": GroundingActor, "guided": SamplerActor, "scorer": ScorerActor}


def sample_and_score(
    cfg: SVPConfig, rows: list[dict], adapter: str | None, vocabulary: str, actors: dict | None = None
) -> ray.data.Dataset:
    """The Ray Data graph, lazy: prior samples -> grounding -> guided samples -> scores. Each
    input block is one prior call's images (resources.batch_size), so rows stream out a few
    images at a time. `actors` swaps stage classes (same constructor keywords), e.g. for a
    benchmark of the plumbing. The ablations' missing columns are filled by `finish`."""
    res, smp = cfg.resources, cfg.sampling
    act = ACTORS | (actors or {})
    ds = ray.data.from_items(rows, override_num_blocks=max(1, math.ceil(len(rows) / res.batch_size)))
    common = {
        "model_spec": cfg.model.vlm,
        "adapter": adapter,
        "temperature": smp.temperature,
        "top_p": smp.top_p,
        "max_new_tokens": smp.max_new_tokens,
        "seed": cfg.run.seed,
        "engine": cfg.model.engine,
    }
    samples = res.batch_size * smp.k  # rows per call after the prior sampler: K per image
    ds = ActorStage(act["prior"], common | {"mode": "prior", "k": smp.k}, res.pool("sampler")).apply(ds)
    if cfg.svp.ablation == "no_feedback":
        return ds
    ground = {"detector_spec": cfg.model.detector, "vocabulary": vocabulary, "phrases_from": cfg.svp.grounding}
    ds = ActorStage(act["grounder"], ground, res.pool("grounder", samples, gpus=False)).apply(ds)
    ds = ActorStage(act["guided"], common | {"mode": "guided"}, res.pool("sampler", samples)).apply(ds)
    if cfg.svp.ablation == "no_scoring":
        return ds
    scorer = {"model_spec": cfg.model.vlm, "adapter": adapter}
    ds = ActorStage(act["scorer"], scorer, res.pool("scorer", samples)).apply(ds)
    if cfg.svp.score == "genrm":  # the reward model ranks each image's K guided captions pairwise
        rank = {"reward_model_spec": cfg.model.reward_model}
        ds = ActorStage(RewardRankActor, rank, res.pool("scorer"), group_by="image_id").apply(ds)
    return ds


def image_rows(row: dict) -> int:
    """How many rows the row's image has: the prior sampler repeats the image's priors (K, or
    one empty prior for an image that failed) on each of its rows."""
    return len(row["image_priors"])


def finish(cfg: SVPConfig, df: pd.DataFrame, iteration: int) -> pd.DataFrame:
    """Whole images' rows as written: the ablations' columns filled, top fraction selected,
    image_priors (only the grounder's input) dropped."""
    if cfg.svp.ablation == "no_feedback":
        df = df.assign(grounding="", guided=df["prior"])
    if cfg.svp.ablation != "none":
        df = df.assign(S=float("nan"), delta=float("nan"))
    return select(cfg, df, iteration).drop(columns=["image_priors"], errors="ignore")


def select(cfg: SVPConfig, df: pd.DataFrame, iteration: int) -> pd.DataFrame:
    """Mark the kept samples: top fraction per image by the chosen score (random for ablations,
    drawn per image, so a resumed run draws what an uninterrupted one would)."""
    df = df.copy()
    good = (df["error"] == "") & (df["guided"].str.len() > 0)
    if cfg.svp.ablation == "none":
        key = df[cfg.svp.score].fillna(float("-inf"))
    else:
        rngs: dict = {}
        key = pd.Series(
            [rngs.setdefault(i, random.Random(f"{cfg.run.seed}-{iteration}-{i}")).random() for i in df["image_id"]],
            index=df.index,
        )
    keep = pd.Series(False, index=df.index)
    sub = df[good]
    flags = top_fraction(key[good].tolist(), sub["image_id"].tolist(), cfg.svp.top_fraction) if len(sub) else []
    keep[sub.index] = flags
    return df.assign(selected=keep)


def sample_to(
    cfg: SVPConfig,
    rows: list[dict],
    adapter: str | None,
    vocabulary: str,
    it_dir: Path,
    iteration: int,
    errors: Path,
    actors: dict | None = None,
) -> dict:
    """One iteration's sampling stage, streamed and resumable per image: the graph's rows go to
    it_dir/scored.parts/ as they arrive (pipelines.common.sink); a re-run samples only the images not
    written there. Then scored.parquet, selected.parquet, errors (one line per failed image)
    and sample_quality.json, a part at a time. Returns the sink's counts."""
    sink = PartSink(
        it_dir / "scored.parts",
        {"iteration": iteration, "adapter": adapter, "adapter_weights": _weights_stamp(adapter)},
    )
    stats = sink.run(
        rows,
        lambda todo: sample_and_score(cfg, todo, adapter, vocabulary, actors),
        image_rows,
        lambda df: finish(cfg, df, iteration),
    )
    sink.compact(it_dir / "scored.parquet", it_dir / "selected.parquet", where="selected")
    logged = set()
    if errors.exists():
        logged = {(e["iteration"], e["image_id"]) for e in map(json.loads, errors.read_text().splitlines())}
    with open(errors, "a") as f:
        for df in sink.frames(["image_id", "path", "error"]):
            for r in df[df["error"] != ""].drop_duplicates("image_id").itertuples():
                if (iteration, int(r.image_id)) not in logged:
                    f.write(
                        json.dumps(
                            {"iteration": iteration, "image_id": int(r.image_id), "path": r.path, "error": r.error}
                        )
                        + "\n"
                    )
    quality = svp_report.sample_quality_parts(
        cfg, sink.frames(["image_id", "prior", "guided", "selected", "error"]), vocabulary
    )
    write_json(quality, it_dir / "sample_quality.json")
    return stats


def _weights_stamp(adapter: str | None) -> list | None:
    """Size and mtime of an adapter's weights: a retrained adapter invalidates rows sampled with it."""
    if not adapter:
        return None
    f = Path(adapter) / "adapter_model.safetensors"
    return [f.stat().st_size, f.stat().st_mtime_ns] if f.exists() else None


def run_ablation(cfg: SVPConfig, config_path: str | None, overrides: list[str], name: str, run_dir: Path) -> dict:
    """The same recipe and budget with svp.ablation=name, as its own resumable run beside this
    one (base metrics shared: same model, same held-out split); its last iteration's metrics."""
    sub = f"{cfg.run.name}__{name}"
    sub_dir = Path(cfg.run.dir) / sub
    sub_dir.mkdir(parents=True, exist_ok=True)
    if not (sub_dir / "base_metrics.json").exists():
        shutil.copy(run_dir / "base_metrics.json", sub_dir / "base_metrics.json")
        Stages(sub_dir).finish("eval_base", 0.0, {"base_metrics.json": fingerprint(sub_dir / "base_metrics.json")})
    print(f"[ablation] {name} -> {sub_dir}", flush=True)
    config = ["--config", config_path] if config_path else []
    report = main([*config, *overrides, f"run.name={sub}", f"svp.ablation={name}", "svp.compare_ablations=[]"])
    last = report["iterations"][-1] if report["iterations"] else {"iteration": 0, "metrics": report["base"]}
    return {"iteration": last["iteration"], "run": str(sub_dir), **last["metrics"]}


def main(argv: list[str] | None = None) -> dict:
    a = cli.parser(__doc__, "configs/svp_shapes.yaml", "sampling.k=20 train.lora.r=64").parse_args(argv)
    cfg = cli.load(SVPConfig, a)
    run_dir = cli.start_run(cfg, "SVP")
    cli.init_ray()
    stages = Stages(run_dir)
    # Absolute paths: Ray Train workers and actors do not run in the driver's directory.
    records = load_dataset(Path(cfg.data.path).resolve())[: cfg.data.n_images]
    rows = [{"image_id": r.image_id, "path": str(r.path), "error": ""} for r in records]
    vocabulary = vocab.for_records(records, cfg.data.vocabulary).name

    stages.run(
        "eval_base",
        lambda: svp_report.evaluate_to(cfg, None, run_dir / "base_metrics.json", vocabulary),
        ["base_metrics.json"],
    )
    adapter: str | None = None
    for it in range(1, cfg.svp.iterations + 1):
        it_dir = run_dir / f"iter_{it}"
        it_dir.mkdir(exist_ok=True)
        prev = adapter

        def sample_stage(it_dir=it_dir, prev=prev, it=it) -> None:
            sample_to(cfg, rows, prev, vocabulary, it_dir, it, run_dir / "errors.jsonl")

        name = f"iter_{it}"
        stages.run(
            f"{name}/sample_score_select",
            sample_stage,
            [f"{name}/scored.parquet", f"{name}/selected.parquet", f"{name}/sample_quality.json"],
        )
        stages.run(
            f"{name}/train",
            lambda it_dir=it_dir, prev=prev: svp_train.train(cfg, it_dir, prev, vocabulary),
            [f"{name}/adapter"],
        )
        adapter = str(it_dir / "adapter")
        stages.run(
            f"{name}/eval",
            lambda it_dir=it_dir, adapter=adapter: svp_report.evaluate_to(
                cfg, adapter, it_dir / "metrics.json", vocabulary
            ),
            [f"{name}/metrics.json"],
        )
    ablations = {}
    for name in cfg.svp.compare_ablations:
        ablations[name] = run_ablation(cfg, a.config, a.overrides, name, run_dir)
    report = svp_report.write(cfg, run_dir, stages.seconds(), ablations)
    print(
        json.dumps(
            {"base": report["base"], "final": report["iterations"][-1]["metrics"] if report["iterations"] else None}
        ),
        flush=True,
    )
    return report


if __name__ == "__main__":
    main()
