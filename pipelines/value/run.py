"""Train ViMaR's value model: Ray Data builds TD transitions, Ray Train fits V with TD(0).

1. Ray Data streams the images through a pool of VLM sampler actors (the greedy caption and
   k captions per temperature, one batched pass per image batch) and a pool of CLIP actors
   (delta of every sentence). Ground-truth captions join as extra trajectories.
2. tau = a percentile of delta over the generated sentences; every sentence gets the margin
   reward; ground-truth sentences a fixed high percentile. Consecutive sentences of a
   caption form TD(0) transitions (the last one is terminal).
3. Ray Train fits V (VLM backbone + value head) on them with semi-gradient TD(0), then the
   weak-sentence threshold is calibrated on the training sentences and saved with the model.

    python pipelines/train_value.py --config configs/value_shapes.yaml --out runs/value_shapes/value
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import ray
import torch

from actors.clip import ClipActor
from actors.sampler import CaptionSetActor
from groundloop import config as config_lib
from groundloop.data.coco import load_dataset, load_image
from groundloop.models import load_vlm
from groundloop.vimar import value as value_lib
from groundloop.vimar.value import (
    ValueModel,
    calibrate,
    counterfactual,
    counterfactual_transitions,
    margin_reward,
    split_sentences,
    transitions,
)
from pipelines.common import cli, training
from pipelines.common.pools import ActorStage
from pipelines.common.sink import PartSink
from pipelines.value.config import ValueConfig


def clip_deltas(cfg: ValueConfig, ds: ray.data.Dataset, captions_per_row: int) -> ray.data.Dataset:
    """CLIP delta of every sentence of every caption row, through a pool of CLIP actors."""
    pool = cfg.resources.pool("clip", cfg.resources.batch_size * captions_per_row, gpus=False)
    ds = ActorStage(ClipActor, {"clip_spec": cfg.model.clip}, pool).apply(ds)
    return ds


def plain_lists(df: pd.DataFrame) -> pd.DataFrame:
    """Plain object columns: Arrow-typed list columns do not read back from parquet in pandas."""
    return df.assign(sentences=[list(x) for x in df["sentences"]], deltas=[list(map(float, x)) for x in df["deltas"]])


def captions_per_image(cfg: ValueConfig) -> int:
    """Greedy + k captions at each sampling temperature."""
    return 1 + len(cfg.sampling.temperatures) * cfg.sampling.k


def caption_set(cfg: ValueConfig, rows: list[dict]) -> ray.data.Dataset:
    """The graph: one row per (image, caption): sample, source, caption, sentences, CLIP deltas."""
    res, smp = cfg.resources, cfg.sampling
    ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 8)))
    sampler = {
        "model_spec": cfg.model.vlm,
        "temperatures": smp.temperatures,
        "k": smp.k,
        "top_p": smp.top_p,
        "max_new_tokens": smp.max_new_tokens,
        "seed": cfg.run.seed,
    }
    ds = ActorStage(CaptionSetActor, sampler, res.pool("sampler")).apply(ds)
    return clip_deltas(cfg, ds, captions_per_image(cfg))


def captions_to(cfg: ValueConfig, rows: list[dict], folder: Path) -> pd.DataFrame:
    """`caption_set`'s rows streamed into parquet parts under `folder` as they are produced
    (pipelines.common.sink), resumable per image: a re-run samples only the images not written
    there. Read back in input order, each image's rows by `sample`."""
    n = captions_per_image(cfg)
    source = {
        "graph": "caption_set",
        "models": [cfg.model.vlm, cfg.model.clip],
        "sampling": config_lib.to_dict(cfg.sampling),
        "seed": cfg.run.seed,
    }
    sink = PartSink(folder, source)
    sink.run(
        rows,
        lambda todo: caption_set(cfg, todo),
        lambda row: 1 if row["source"] == "error" else n,  # an unreadable image has one row
        plain_lists,
        label="captions",
    )
    return plain_lists(sink.read([r["image_id"] for r in rows]))


def counterfactual_set(cfg: ValueConfig, captions: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """For each generated caption: its sentences with a fraction of them swapped (`swapped`,
    None where not), scored by the CLIP actors, streamed into parquet parts under `folder` and
    resumable per image as `captions_to` is. Index-aligned with `captions`."""
    rng = random.Random(cfg.run.seed)
    groups = [g.split() for g in cfg.td.swap_groups]
    swapped = [
        [counterfactual(s, groups, rng) if rng.random() < cfg.td.counterfactuals else None for s in sents]
        for sents in captions["sentences"]
    ]
    rows = [
        {"image_id": i, "path": p, "caption": " ".join(a or s for s, a in zip(sents, alts)), "row": r}
        for r, (i, p, sents, alts) in enumerate(
            zip(captions["image_id"], captions["path"], captions["sentences"], swapped)
        )
    ]
    per_image = Counter(int(i) for i in captions["image_id"])
    source = {
        "graph": "counterfactual_set",
        "clip": cfg.model.clip,
        "td": [cfg.td.counterfactuals, list(cfg.td.swap_groups)],
        "seed": cfg.run.seed,
        "captions": hashlib.sha256(json.dumps([[int(r["image_id"]), r["caption"]] for r in rows]).encode()).hexdigest(),
    }
    sink = PartSink(folder, source, sub="row")
    sink.run(
        rows,
        lambda todo: clip_deltas(
            cfg, ray.data.from_items(todo, override_num_blocks=max(1, min(len(todo), 8))), captions_per_image(cfg)
        ),
        lambda row: per_image[int(row["image_id"])],
        plain_lists,
        label="counterfactuals",
    )
    df = plain_lists(sink.read()).sort_values("row")
    # a swap never splits or joins sentences, so the lists stay aligned with the originals
    return df.assign(
        swapped=[
            [a if a and a == b else None for a, b in zip(alts, cf)] if len(alts) == len(cf) else [None] * len(alts)
            for alts, cf in zip(swapped, df["sentences"])
        ]
    ).reset_index(drop=True)


def build_transitions(
    cfg: ValueConfig, captions: pd.DataFrame, gt: pd.DataFrame, swaps: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, dict]:
    """TD rows (path, state, next_state, reward, terminal, source) and the reward calibration.
    swaps: `counterfactual_set`'s rows, index-aligned with captions (tau is calibrated without them)."""
    deltas = [d for ds in captions["deltas"] for d in ds]
    tau = calibrate(deltas, cfg.reward.tau_percentile)
    gt_reward = calibrate(deltas, cfg.reward.gt_percentile)
    rewards = [
        margin_reward(torch.tensor(list(d), dtype=torch.float32), tau, cfg.reward.alpha).tolist()
        for d in captions["deltas"]
    ]
    sents = [list(s) for s in captions["sentences"]]
    paths, sources = list(captions["path"]), list(captions["source"])
    for path, cap in zip(gt["path"], gt["caption"]):
        s = split_sentences(cap)
        sents.append(s)
        rewards.append([gt_reward] * len(s))
        paths.append(path)
        sources.append("ground_truth")
    rows = [
        {"path": paths[c], "state": s, "next_state": nxt, "reward": r, "terminal": term, "source": sources[c]}
        for c, s, nxt, r, term in transitions(sents, rewards)
    ]
    if swaps is not None:
        swap_rewards = [
            [float(margin_reward(torch.tensor(d), tau, cfg.reward.alpha)) if a else None for a, d in zip(alts, ds)]
            for alts, ds in zip(swaps["swapped"], swaps["deltas"])
        ]
        rows += [
            {"path": paths[c], "state": s, "next_state": nxt, "reward": r, "terminal": term, "source": "counterfactual"}
            for c, s, nxt, r, term in counterfactual_transitions(
                [list(x) for x in captions["sentences"]], list(swaps["swapped"]), swap_rewards
            )
        ]
    calib = {
        "tau": tau,
        "tau_percentile": cfg.reward.tau_percentile,
        "alpha": cfg.reward.alpha,
        "gt_reward": gt_reward,
        "gt_percentile": cfg.reward.gt_percentile,
        "gamma": cfg.td.gamma,
        "delta_mean": sum(deltas) / len(deltas),
        "n_sentences": len(deltas),
    }
    return pd.DataFrame(rows), calib


def train_loop(config: dict) -> None:
    """Runs on every Ray Train worker: semi-gradient TD(0) on the transitions."""
    training.setup_worker(config)
    model = ValueModel(
        *load_vlm(config["model"]),
        meta={"pool": config["pool"], "match_keys": config["match_keys"], "reward_head": config["reward_weight"] > 0},
    )
    if config["vision_init"]:
        from groundloop.models import load_clip

        clip, _ = load_clip(config["vision_init"])
        model.vlm.model.vision_tower.load_state_dict(clip.vision_model.state_dict(), strict=True)
    model.train()
    opt = value_lib.optimizer(model, config["lr"])
    steps = training.epoch_steps(config["n_rows"], config["batch_size"], config["epochs"])
    sched = training.cosine_schedule(opt, steps)
    img = training.Images()
    shard = ray.train.get_dataset_shard("train")
    losses: list[float] = []
    for epoch in range(config["epochs"]):
        for b in shard.iter_batches(
            batch_size=config["batch_size"],
            batch_format="pandas",
            local_shuffle_buffer_size=4096,
            local_shuffle_seed=config["seed"] + epoch,  # the same shuffle on every run of a seed
        ):
            loss = value_lib.td_batch_loss(
                model,
                [img(p) for p in b["path"]],
                b["state"].tolist(),
                b["next_state"].tolist(),
                b["reward"].tolist(),
                b["terminal"].tolist(),
                config["gamma"],
                config["reward_weight"],
            )
            training.step(loss, opt, sched, losses, steps=steps, clip=model, label="td")
    training.report(model, losses)


def train(cfg: ValueConfig, rows: pd.DataFrame, run_dir: Path) -> Path:
    config = {
        "model": cfg.model.vlm,
        "lr": cfg.td.lr,
        "epochs": cfg.td.epochs,
        "batch_size": cfg.td.batch_size,
        "gamma": cfg.td.gamma,
        "n_rows": len(rows),
        "seed": cfg.run.seed,
        "torch_threads": cfg.train.torch_threads,
        "vision_init": cfg.model.vision_init,
        "pool": cfg.td.pool,
        "match_keys": cfg.td.match_keys,
        "reward_weight": cfg.td.reward_weight,
    }
    out = training.fit(
        train_loop,
        config,
        rows.sample(frac=1.0, random_state=cfg.run.seed),
        run_dir / "trained",
        name=cfg.run.name,
        num_workers=cfg.train.num_workers,
        cpus_per_worker=cfg.train.cpus_per_worker,
        use_gpu=cfg.resources.gpus_per_actor > 0,
    )
    return out


def main(argv: list[str] | None = None) -> dict:
    p = cli.parser(__doc__, "configs/value_shapes.yaml", "td.epochs=3 data.n_images=100")
    p.add_argument("--out", type=Path, help="where the value model folder goes (default run_dir/value)")
    a = p.parse_args(argv)
    cfg = cli.load(ValueConfig, a)
    run_dir = cli.start_run(cfg, "value")
    out = a.out or run_dir / "value"
    cli.init_ray()
    timings: dict[str, float] = {}
    records = load_dataset(Path(cfg.data.path).resolve())[: cfg.data.n_images]
    rows = [{"image_id": r.image_id, "path": str(r.path), "error": ""} for r in records]
    t = time.time()
    caps_file = run_dir / "captions.parquet"
    if caps_file.exists():  # resume: the sampling stage finished earlier
        caps = pd.read_parquet(caps_file)
    else:  # a stage cut short resumes per image from captions.parts/
        caps = captions_to(cfg, rows, run_dir / "captions.parts")
        caps.to_parquet(caps_file)
    errors = caps[caps["error"] != ""].drop_duplicates("image_id")
    if len(errors):
        errors[["image_id", "path", "error"]].to_json(run_dir / "errors.jsonl", orient="records", lines=True)
    caps = caps[(caps["error"] == "") & (caps["caption"].str.len() > 0)].reset_index(drop=True)
    readable = set(caps["image_id"])  # an unreadable image drops out of every trajectory
    gt = pd.DataFrame(
        [
            {"path": str(r.path), "caption": r.captions[0]}
            for r in records
            if cfg.sampling.ground_truth and r.captions and r.image_id in readable
        ],
        columns=["path", "caption"],
    )
    swaps = None
    if cfg.td.counterfactuals:
        swaps_file = run_dir / "counterfactuals.parquet"
        if swaps_file.exists():
            swaps = pd.read_parquet(swaps_file)
            swaps = swaps.assign(swapped=[list(x) for x in swaps["swapped"]])
        else:
            swaps = counterfactual_set(cfg, caps, run_dir / "counterfactuals.parts")
            swaps.to_parquet(swaps_file)
    timings["sample_clip_s"] = time.time() - t
    td_rows, calib = build_transitions(cfg, caps, gt, swaps)
    td_rows.to_parquet(run_dir / "transitions.parquet")
    print(
        f"{len(td_rows)} transitions from {len(caps)} captions + {len(gt)} ground truths; tau={calib['tau']:.4f}",
        flush=True,
    )
    t = time.time()
    trained = train(cfg, td_rows, run_dir)
    timings["train_s"] = time.time() - t
    t = time.time()
    model = ValueModel.from_pretrained(trained)
    own = td_rows[~td_rows["source"].isin(["ground_truth", "counterfactual"])]
    v = model.values([load_image(p) for p in own["path"]], list(own["state"]))
    calib["value_threshold"] = calibrate(v, cfg.td.weak_percentile)
    calib["weak_percentile"] = cfg.td.weak_percentile
    calib["value_mean"] = sum(v) / len(v)
    model.meta = calib | {
        "pool": cfg.td.pool,
        "match_keys": cfg.td.match_keys,
        "reward_head": cfg.td.reward_weight > 0,
        "policy": cfg.model.vlm,
        "clip": cfg.model.clip,
        "n_images": len(records),
        "recipe": config_lib.to_dict(cfg),
    }
    model.save_pretrained(out)
    timings["calibrate_s"] = time.time() - t
    report = {
        "out": str(out),
        "calibration": calib,
        "n_transitions": len(td_rows),
        "timings": timings,
        "final_td_loss": json.loads((trained / "losses.json").read_text())[-25:],
    }
    (run_dir / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("out", "n_transitions", "timings")} | {"calibration": calib}), flush=True)
    return report


if __name__ == "__main__":
    main()
