"""Self-training through the captioning endpoint: the Serve deployment writes ViMaR captions
of unlabeled images, Ray Train LoRA-fine-tunes the VLM on them, and the running deployment
switches to the new adapter in place (no dropped requests); repeat for R rounds.

Per round: Ray Data streams the images to the deployment through its handle -> captions ->
TorchTrainer (LoRA on (image, base prompt, caption)) -> adapter -> deployment reconfigured
-> greedy CHAIR / recall of the adapted model on the held-out split.

    python pipelines/self_train.py --config configs/self_train_shapes.yaml self_train.rounds=2
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import ray
from ray import serve
from ray.data import ActorPoolStrategy

from actors.serve_client import ServeCaptionActor
from groundloop import config as config_lib
from groundloop import prompts, vocab
from groundloop.data.coco import load_dataset
from groundloop.eval import metrics as metrics_lib
from pipelines.common import cli, training
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


def caption_round(cfg: SelfTrainConfig, rows: list[dict]) -> pd.DataFrame:
    ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 8)))
    ds = ds.map_batches(
        ServeCaptionActor,
        fn_constructor_kwargs={"app_name": cfg.serving.app_name, "decoder": cfg.serving.decoder},
        batch_format="pandas",
        batch_size=cfg.serving.max_batch_size,
        compute=ActorPoolStrategy(size=1),
        num_cpus=0.1,
    )
    return ds.to_pandas()


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
    serve.start(http_options={"host": "127.0.0.1", "port": cfg.serving.port})
    records = load_dataset(Path(cfg.data.path).resolve())[: cfg.data.n_images]
    rows = [{"image_id": r.image_id, "path": str(r.path)} for r in records]
    by_id, words = {r.image_id: r for r in records}, vocab.for_records(records, cfg.data.vocabulary)
    evaluate = lambda adapter, out: svp_report.evaluate_greedy(  # noqa: E731
        cfg.serving.vlm,
        adapter,
        Path(cfg.data.eval_path),
        cfg.data.eval_n_images,
        cfg.self_train.max_new_tokens,
        out,
        words.name,
    )
    report: dict = {
        "config": config_lib.to_dict(cfg),
        "base": evaluate(None, run_dir / "base_metrics.json"),
        "rounds": [],
    }
    deploy(cfg, None)
    adapter: str | None = None
    for r in range(1, cfg.self_train.rounds + 1):
        round_dir = run_dir / f"round_{r}"
        round_dir.mkdir(exist_ok=True)
        t = time.time()
        caps = caption_round(cfg, rows)
        caps.to_parquet(round_dir / "captions.parquet")
        t_cap = time.time() - t
        good = caps[(caps["error"] == "") & (caps["caption"].str.len() > 0)]
        print(f"[round {r}] {len(good)}/{len(caps)} captions in {t_cap:.0f}s", flush=True)
        t = time.time()
        adapter = train_round(cfg, good, adapter, round_dir)
        t_train = time.time() - t
        deploy(cfg, adapter)  # same app, new user_config: replicas switch adapters in place
        metrics = evaluate(adapter, round_dir / "metrics.json")
        sample = (
            metrics_lib.chair(
                good["caption"].tolist(), [words.truth_labels(by_id[int(i)]) for i in good["image_id"]], words
            )
            if len(good)
            else {}
        )
        report["rounds"].append(
            {
                "round": r,
                "adapter": adapter,
                "metrics": metrics,
                "n_captions": len(good),
                "n_errors": int((caps["error"] != "").sum()),
                "training_captions": {k: sample.get(k) for k in ("chair_i", "recall")},
                "timings": {"caption_s": t_cap, "train_s": t_train},
            }
        )
        print(json.dumps({"round": r, "chair_i": metrics["chair_i"], "recall": metrics["recall"]}), flush=True)
    (run_dir / "report.json").write_text(json.dumps(report, indent=1))
    if not cfg.serving.keep_running:
        serve.delete(cfg.serving.app_name)
    return report


if __name__ == "__main__":
    main()
