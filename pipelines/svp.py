"""SVP (sampling-based visual projection) self-training as a Ray job.

Per iteration: Ray Data streams the training images through VLM sampler actors (K prior
captions each), grounding-expert actors (phrases -> boxes -> <context> text), the sampler
again (one guided caption per prior) and scorer actors (S(q,p), Delta(q,p) by teacher
forcing); the top fraction per image is kept; Ray Train LoRA-fine-tunes the VLM on
(plain prompt, kept caption); the adapted model is evaluated and samples the next round.

    python pipelines/svp.py --config configs/svp_shapes.yaml svp.iterations=2 sampling.k=8
    ray job submit --working-dir . -- python pipelines/svp.py --config configs/svp_shapes.yaml

Re-running with the same run.name resumes after the last finished stage.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # actors/, pipelines/ on a cluster

import pandas as pd  # noqa: E402
import ray  # noqa: E402
from ray.data import ActorPoolStrategy  # noqa: E402

from actors.grounder import GroundingActor  # noqa: E402
from actors.ranker import RewardRankActor  # noqa: E402
from actors.sampler import SamplerActor  # noqa: E402
from actors.scorer import ScorerActor  # noqa: E402
from groundloop import vocab  # noqa: E402
from groundloop.data.coco import load_dataset  # noqa: E402
from groundloop.scoring import top_fraction  # noqa: E402
from pipelines import cli, svp_report, svp_train  # noqa: E402
from pipelines.svp_config import SVPConfig  # noqa: E402


class Stages:
    """Which stages of a run have finished (state.json), so a re-run resumes after them."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "state.json"
        self.state = json.loads(self.path.read_text()) if self.path.exists() else {"done": {}}

    def done(self, name: str) -> bool:
        return name in self.state["done"]

    def finish(self, name: str, seconds: float) -> None:
        self.state["done"][name] = seconds
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1))
        tmp.replace(self.path)  # atomic: an interrupted write never corrupts the state

    def seconds(self) -> dict[str, float]:
        return dict(self.state["done"])


def actor_stage(ds, cls, kwargs: dict, size: int, cpus: float, gpus: float, batch_size: int):
    return ds.map_batches(cls, fn_constructor_kwargs=kwargs, batch_format="pandas", batch_size=batch_size,
                          compute=ActorPoolStrategy(size=size), num_cpus=cpus, num_gpus=gpus or None)


def sample_and_score(cfg: SVPConfig, rows: list[dict], adapter: str | None, vocabulary: str) -> pd.DataFrame:
    """The Ray Data graph: prior samples -> grounding -> guided samples -> scores."""
    res, smp = cfg.resources, cfg.sampling
    ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 8)))
    common = {"model_spec": cfg.model.vlm, "adapter": adapter, "temperature": smp.temperature,
              "top_p": smp.top_p, "max_new_tokens": smp.max_new_tokens, "seed": cfg.run.seed,
              "engine": cfg.model.engine}
    ds = actor_stage(ds, SamplerActor, common | {"mode": "prior", "k": smp.k}, res.sampler_actors,
                     res.sampler_cpus, res.gpus_per_actor, res.batch_size)
    if cfg.svp.ablation == "no_feedback":
        return ds.to_pandas().assign(grounding="", guided=lambda d: d["prior"], S=float("nan"),
                                     delta=float("nan"))
    ds = actor_stage(ds, GroundingActor, {"detector_spec": cfg.model.detector, "vocabulary": vocabulary,
                                          "phrases_from": cfg.svp.grounding},
                     res.grounder_actors,
                     res.grounder_cpus, 0.0, res.batch_size * smp.k)
    ds = actor_stage(ds, SamplerActor, common | {"mode": "guided"}, res.sampler_actors, res.sampler_cpus,
                     res.gpus_per_actor, res.batch_size * smp.k)
    if cfg.svp.ablation == "no_scoring":
        return ds.to_pandas().assign(S=float("nan"), delta=float("nan"))
    ds = actor_stage(ds, ScorerActor, {"model_spec": cfg.model.vlm, "adapter": adapter}, res.scorer_actors,
                     res.scorer_cpus, res.gpus_per_actor, res.batch_size * smp.k)
    if cfg.svp.score == "genrm":  # the reward model ranks each image's K guided captions pairwise
        ds = ds.groupby("image_id").map_groups(
            RewardRankActor, fn_constructor_kwargs={"reward_model_spec": cfg.model.reward_model},
            batch_format="pandas", compute=ActorPoolStrategy(size=res.scorer_actors), num_cpus=res.scorer_cpus,
            num_gpus=res.gpus_per_actor or None)
    return ds.to_pandas()


def select(cfg: SVPConfig, df: pd.DataFrame, iteration: int) -> pd.DataFrame:
    """Mark the kept samples: top fraction per image by the chosen score (random for ablations)."""
    df = df.copy()
    good = (df["error"] == "") & (df["guided"].str.len() > 0)
    if cfg.svp.ablation == "none":
        key = df[cfg.svp.score].fillna(float("-inf"))
    else:
        rng = random.Random(f"{cfg.run.seed}-{iteration}")
        key = pd.Series([rng.random() for _ in range(len(df))], index=df.index)
    keep = pd.Series(False, index=df.index)
    sub = df[good]
    flags = top_fraction(key[good].tolist(), sub["image_id"].tolist(), cfg.svp.top_fraction) if len(sub) else []
    keep[sub.index] = flags
    return df.assign(selected=keep)


def run_ablation(cfg: SVPConfig, config_path: str | None, overrides: list[str], name: str, run_dir: Path) -> dict:
    """The same recipe and budget with svp.ablation=name, as its own resumable run beside this
    one (base metrics shared: same model, same held-out split); its last iteration's metrics."""
    sub = f"{cfg.run.name}__{name}"
    sub_dir = Path(cfg.run.dir) / sub
    sub_dir.mkdir(parents=True, exist_ok=True)
    if not (sub_dir / "base_metrics.json").exists():
        shutil.copy(run_dir / "base_metrics.json", sub_dir / "base_metrics.json")
        Stages(sub_dir).finish("eval_base", 0.0)
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

    def stage(name: str, fn) -> None:
        if stages.done(name):
            print(f"[skip] {name} (finished earlier)", flush=True)
            return
        print(f"[stage] {name}", flush=True)
        t = time.time()
        fn()
        stages.finish(name, time.time() - t)

    stage("eval_base", lambda: svp_report.evaluate_to(cfg, None, run_dir / "base_metrics.json",
                                                                vocabulary))
    adapter: str | None = None
    for it in range(1, cfg.svp.iterations + 1):
        it_dir = run_dir / f"iter_{it}"
        it_dir.mkdir(exist_ok=True)
        prev = adapter

        def sample_stage(it_dir=it_dir, prev=prev, it=it) -> None:
            # image_priors (each image's K priors, repeated on its rows) only fed the grounder
            df = select(cfg, sample_and_score(cfg, rows, prev, vocabulary), it)
            df = df.drop(columns=["image_priors"], errors="ignore")
            errs = df[df["error"] != ""].drop_duplicates("image_id")
            if len(errs):
                with open(run_dir / "errors.jsonl", "a") as f:
                    for r in errs.itertuples():
                        f.write(json.dumps({"iteration": it, "image_id": int(r.image_id), "path": r.path,
                                            "error": r.error}) + "\n")
            df.to_parquet(it_dir / "scored.parquet")
            df[df["selected"]].to_parquet(it_dir / "selected.parquet")
            (it_dir / "sample_quality.json").write_text(json.dumps(svp_report.sample_quality(cfg, df, vocabulary),
                                                                               indent=1))

        stage(f"iter_{it}/sample_score_select", sample_stage)
        stage(f"iter_{it}/train", lambda it_dir=it_dir, prev=prev: svp_train.train(cfg, it_dir, prev, vocabulary))
        adapter = str(it_dir / "adapter")
        stage(f"iter_{it}/eval", lambda it_dir=it_dir, adapter=adapter: svp_report.evaluate_to(
            cfg, adapter, it_dir / "metrics.json", vocabulary))
    ablations = {}
    for name in cfg.svp.compare_ablations:
        ablations[name] = run_ablation(cfg, a.config, a.overrides, name, run_dir)
    report = svp_report.write(cfg, run_dir, stages.seconds(), ablations)
    print(json.dumps({"base": report["base"], "final": report["iterations"][-1]["metrics"]
                      if report["iterations"] else None}), flush=True)
    return report


if __name__ == "__main__":
    main()
