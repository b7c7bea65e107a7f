"""SVP's LoRA adaptation on Ray Train: (image, base prompt, kept caption) -> PEFT adapter.

With svp.variant=CVQ an equal number of yes/no and counting question/answer pairs from the
images' annotations is mixed in, so the model does not over-specialise on description.
"""

from __future__ import annotations

import math
import random
import shutil
import tempfile
import uuid
from pathlib import Path

import pandas as pd
import ray
import torch
from ray.train import Checkpoint, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from groundloop import prompts
from groundloop.data.coco import load_dataset, load_image
from groundloop.finetune import add_lora, build_example, collate
from groundloop.models import load_vlm
from groundloop.worlds import shapes as world
from pipelines.svp_config import SVPConfig


def qa_rows(cfg: SVPConfig, selected: pd.DataFrame, seed: int) -> pd.DataFrame:
    """As many QA pairs as captions: yes/no about a present or absent object, or a count."""
    rng = random.Random(seed)
    by_id = {r.image_id: r for r in load_dataset(Path(cfg.data.path))}
    rows = []
    for image_id, path in zip(selected["image_id"], selected["path"]):
        rec = by_id[int(image_id)]
        names = {f"{o.attributes.get('color', '')} {o.category}".strip() for o in rec.objects}
        kind = rng.choice(["yes", "no", "count"])
        if kind == "yes" and names:
            q, ans = prompts.yes_no_question(rng.choice(sorted(names))), "Yes."
        elif kind == "count":
            shape = rng.choice(world.SHAPES)
            k = sum(o.category == shape for o in rec.objects)
            plural = "crosses" if shape == "cross" else shape + "s"
            q, ans = f"How many {plural} are there in the image?", f"{world.NUMBER_WORDS[k].capitalize()}."
        else:
            absent = [f"{c} {s}" for c, s in world.object_types() if f"{c} {s}" not in names]
            q, ans = prompts.yes_no_question(rng.choice(absent)), "No."
        rows.append({"path": path, "prompt": q, "target": ans})
    return pd.DataFrame(rows)


def train_loop(config: dict) -> None:
    """Runs on every Ray Train worker: LoRA fine-tuning with a cosine schedule and warmup."""
    torch.manual_seed(config["seed"])
    if config["torch_threads"]:
        torch.set_num_threads(config["torch_threads"])  # Ray pins workers to OMP_NUM_THREADS=num_cpus
    model, processor = load_vlm(config["model"])
    model = add_lora(model, config["r"], config["alpha"], config["dropout"], config["target_modules"],
                     adapter=config["adapter"])
    model.train()
    model = ray.train.torch.prepare_model(model) if ray.train.get_context().get_world_size() > 1 else model
    shard = ray.train.get_dataset_shard("train")
    n_rows = config["n_rows"] // ray.train.get_context().get_world_size()
    steps = max(1, math.ceil(n_rows / config["batch_size"]) * config["epochs"])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config["lr"])
    warm = max(1, int(config["warmup"] * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    losses = []
    for _ in range(config["epochs"]):
        for batch in shard.iter_batches(batch_size=config["batch_size"], batch_format="pandas"):
            ex = [build_example(processor, load_image(p), q, t)
                  for p, q, t in zip(batch["path"], batch["prompt"], batch["target"])]
            loss = model(**collate(ex, processor)).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            if len(losses) % 25 == 0:  # progress; a report per step costs more than the step itself
                print(f"step {len(losses)}/{steps} loss {sum(losses[-25:]) / 25:.4f}", flush=True)
    with tempfile.TemporaryDirectory() as d:
        if ray.train.get_context().get_world_rank() == 0:
            inner = model.module if hasattr(model, "module") else model
            inner.save_pretrained(d)
            (Path(d) / "losses.json").write_text(str(losses))
        ray.train.report({"loss": losses[-1] if losses else float("nan"), "step": len(losses)},
                         checkpoint=Checkpoint.from_directory(d))


def train(cfg: SVPConfig, it_dir: Path, prev_adapter: str | None) -> None:
    selected = pd.read_parquet(it_dir / "selected.parquet")
    rows = pd.DataFrame({"path": selected["path"], "prompt": prompts.BASE_PROMPT, "target": selected["guided"]})
    if cfg.svp.variant == "CVQ":
        rows = pd.concat([rows, qa_rows(cfg, selected, cfg.run.seed)], ignore_index=True)
    rows = rows.sample(frac=1.0, random_state=cfg.run.seed).reset_index(drop=True)
    lora, tr = cfg.train.lora, cfg.train
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={"model": cfg.model.vlm, "adapter": prev_adapter, "r": lora.r, "alpha": lora.alpha,
                           "dropout": lora.dropout, "target_modules": lora.target_modules, "lr": tr.lr,
                           "warmup": tr.warmup, "epochs": tr.epochs, "batch_size": tr.batch_size,
                           "n_rows": len(rows), "seed": cfg.run.seed, "torch_threads": tr.torch_threads},
        scaling_config=ScalingConfig(num_workers=tr.num_workers, use_gpu=cfg.resources.gpus_per_actor > 0,
                                     resources_per_worker={"CPU": tr.cpus_per_worker}),
        # A fresh name every time: re-using a name would resume that old Train run.
        run_config=RunConfig(name=f"{cfg.run.name}-{it_dir.name}-{uuid.uuid4().hex[:8]}",
                             storage_path=str((it_dir / "ray_train").resolve())),
        datasets={"train": ray.data.from_pandas(rows)},
    )
    result = trainer.fit()
    out = it_dir / "adapter"
    if out.exists():
        shutil.rmtree(out)
    result.checkpoint.to_directory(str(out))
    (it_dir / "train_rows.json").write_text(str(len(rows)))
