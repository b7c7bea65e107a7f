"""Self-training through the captioning endpoint: the Serve deployment writes ViMaR captions
of unlabeled images, Ray Train LoRA-fine-tunes the VLM on them, and the running deployment
switches to the new adapter in place (no dropped requests); repeat for R rounds.

Per round: Ray Data streams the images to the deployment through its handle -> captions ->
TorchTrainer (LoRA on (image, base prompt, caption)) -> adapter -> deployment reconfigured
-> greedy CHAIR / recall of the adapted model on the held-out split.

    python pipelines/self_train.py --config configs/self_train_shapes.yaml self_train.rounds=2

Re-running the same command resumes after the last finished stage (pipelines.common.stages);
the endpoint is started only for a round whose captions are still to be written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import ray
from ray import serve

from actors.serve_client import ServeCaptionActor
from groundloop import config as config_lib
from groundloop import prompts, vocab
from groundloop.data.coco import load_dataset
from groundloop.eval import metrics as metrics_lib
from pipelines.common import cli, training
from pipelines.common.config import Pool
from pipelines.common.pools import ActorStage
from pipelines.common.stages import Stages, read_json, write_json, write_parquet
from pipelines.self_train.config import SelfTrainConfig
from pipelines.svp import report as svp_report
from pipelines.svp import train as svp_train
from serve.app import build_app


def app_config(cfg: SelfTrainConfig, adapter: str | None) -> dict:
    s = cfg.serving
    return {
        "vlm": s.vlm,
        "adapter": adapter,
        "value": s.value,
        "clip": s.clip,
        "torch_threads": s.torch_threads,
        "max_batch_size": s.max_batch_size,
        "max_new_tokens": cfg.self_train.max_new_tokens,
        "decode": {"temperatures": list(s.temperatures), "k": s.k},
        "deployment": {"ray_actor_options": {"num_cpus": s.replica_cpus}, "user_config": {"adapter": adapter}},
    }


def deploy(cfg: SelfTrainConfig, adapter: str | None) -> None:
    """Start the deployment, or (same app, new user_config) switch its adapter in place."""
    serve.run(build_app(app_config(cfg, adapter)), name=cfg.serving.app_name, route_prefix="/")


class Endpoint:
    """The deployment, started (or switched to another adapter in place) only when asked."""

    def __init__(self, cfg: SelfTrainConfig) -> None:
        self.cfg, self.up, self.adapter = cfg, False, None

    def serving(self, adapter: str | None) -> None:
        if not self.up:
            serve.start(http_options={"host": "127.0.0.1", "port": self.cfg.serving.port})
        if not self.up or adapter != self.adapter:
            deploy(self.cfg, adapter)
        self.up, self.adapter = True, adapter

    def close(self) -> None:
        if self.up:
            serve.delete(self.cfg.serving.app_name)
            self.up = False


def caption_round(cfg: SelfTrainConfig, rows: list[dict]) -> pd.DataFrame:
    ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 8)))
    # one client actor: it only forwards paths, the deployment batches and decodes them
    client = Pool(actors=1, cpus=0.1, batch_size=cfg.serving.max_batch_size)
    args = {"app_name": cfg.serving.app_name, "decoder": cfg.serving.decoder}
    return ActorStage(ServeCaptionActor, args, client).apply(ds).to_pandas()


def good_captions(caps: pd.DataFrame) -> pd.DataFrame:
    return caps[(caps["error"] == "") & (caps["caption"].str.len() > 0)]


def round_summary(
    r: int, adapter: str, caps: pd.DataFrame, metrics: dict, words: vocab.Vocabulary, by_id: dict, seconds: dict
) -> dict:
    """A round in report.json: the adapted model's metrics and what it was trained on."""
    good = good_captions(caps)
    truth = [words.truth_labels(by_id[int(i)]) for i in good["image_id"]]
    sample = metrics_lib.chair(good["caption"].tolist(), truth, words) if len(good) else {}
    return {
        "round": r,
        "adapter": adapter,
        "metrics": metrics,
        "n_captions": len(good),
        "n_errors": int((caps["error"] != "").sum()),
        "training_captions": {k: sample.get(k) for k in ("chair_i", "recall")},
        "timings": {"caption_s": seconds[f"round_{r}/caption"], "train_s": seconds[f"round_{r}/train"]},
    }


def train_round(cfg: SelfTrainConfig, captions: pd.DataFrame, prev: str | None, round_dir: Path) -> str:
    rows = pd.DataFrame({"path": captions["path"], "prompt": prompts.BASE_PROMPT, "target": captions["caption"]})
    rows = rows.sample(frac=1.0, random_state=cfg.run.seed).reset_index(drop=True)
    tr = cfg.train
    out = training.fit(
        svp_train.train_loop,
        svp_train.lora_config(cfg, cfg.serving.vlm, prev, len(rows)),
        rows,
        round_dir / "adapter",
        name=f"{cfg.run.name}-{round_dir.name}",
        num_workers=tr.num_workers,
        cpus_per_worker=tr.cpus_per_worker,
    )
    return str(out.resolve())


def main(argv: list[str] | None = None) -> dict:
    a = cli.parser(__doc__, "configs/self_train_shapes.yaml", "self_train.rounds=2").parse_args(argv)
    cfg = cli.load(SelfTrainConfig, a)
    run_dir = cli.start_run(cfg, "self-training")
    cli.init_ray()
    stages = Stages(run_dir)
    records = load_dataset(Path(cfg.data.path).resolve())[: cfg.data.n_images]
    rows = [{"image_id": r.image_id, "path": str(r.path)} for r in records]
    by_id, words = {r.image_id: r for r in records}, vocab.for_records(records, cfg.data.vocabulary)
    endpoint = Endpoint(cfg)

    def evaluate(adapter: str | None, out: Path) -> None:
        svp_report.evaluate_greedy(
            cfg.serving.vlm,
            adapter,
            Path(cfg.data.eval_path),
            cfg.data.eval_n_images,
            cfg.self_train.max_new_tokens,
            out,
            words.name,
        )

    def caption(adapter: str | None, out: Path) -> None:
        endpoint.serving(adapter)  # round r captions with round r-1's adapter
        write_parquet(caption_round(cfg, rows), out)

    stages.run("eval_base", lambda: evaluate(None, run_dir / "base_metrics.json"), ["base_metrics.json"])
    rounds = []
    adapter: str | None = None
    for r in range(1, cfg.self_train.rounds + 1):
        name, prev = f"round_{r}", adapter
        round_dir = run_dir / name
        round_dir.mkdir(exist_ok=True)
        stages.run(
            f"{name}/caption",
            lambda prev=prev, round_dir=round_dir: caption(prev, round_dir / "captions.parquet"),
            [f"{name}/captions.parquet"],
        )
        caps = pd.read_parquet(round_dir / "captions.parquet")
        good = good_captions(caps)
        print(f"[{name}] {len(good)}/{len(caps)} captions to train on", flush=True)
        stages.run(
            f"{name}/train",
            lambda good=good, prev=prev, round_dir=round_dir: train_round(cfg, good, prev, round_dir),
            [f"{name}/adapter"],
        )
        adapter = str(round_dir / "adapter")  # absolute: run_dir is
        stages.run(
            f"{name}/eval",
            lambda adapter=adapter, round_dir=round_dir: evaluate(adapter, round_dir / "metrics.json"),
            [f"{name}/metrics.json"],
        )
        metrics = read_json(round_dir / "metrics.json")
        rounds.append(round_summary(r, adapter, caps, metrics, words, by_id, stages.seconds()))
        print(json.dumps({"round": r, "chair_i": metrics["chair_i"], "recall": metrics["recall"]}), flush=True)
    if cfg.serving.keep_running:
        endpoint.serving(adapter)  # replicas switch to the last adapter in place
    else:
        endpoint.close()
    report = {
        "config": config_lib.to_dict(cfg),
        "base": read_json(run_dir / "base_metrics.json"),
        "rounds": rounds,
        "seconds": stages.seconds(),
    }
    write_json(report, run_dir / "report.json")
    return report


if __name__ == "__main__":
    main()
