"""SVP's LoRA adaptation on Ray Train: (image, base prompt, kept caption) -> PEFT adapter.

With svp.variant=CVQ an equal number of yes/no and counting question/answer pairs from the
images' annotations is mixed in, so the model does not over-specialise on description.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pandas as pd
import ray
import ray.train.torch
import torch

from groundloop import prompts, vocab
from groundloop.data.coco import load_dataset, load_image
from groundloop.finetune import add_lora, build_example, collate
from groundloop.models import families, load_vlm
from groundloop.vocab.lexicon import NUMBER_WORDS, plural
from pipelines.common import training
from pipelines.svp.config import SVPConfig


def qa_rows(cfg: SVPConfig, selected: pd.DataFrame, seed: int, vocabulary: str) -> pd.DataFrame:
    """As many QA pairs as captions: yes/no about a present or absent object, or a count of a
    category, answered from the annotations."""
    rng = random.Random(seed)
    records = load_dataset(Path(cfg.data.path))
    words = vocab.for_records(records, vocabulary)
    by_id = {r.image_id: r for r in records}
    rows = []
    for image_id, path in zip(selected["image_id"], selected["path"]):
        rec = by_id[int(image_id)]
        names = words.truth_labels(rec)
        kind = rng.choice(["yes", "no", "count"])
        if kind == "yes" and names:
            q, ans = prompts.yes_no_question(rng.choice(sorted(names))), "Yes."
        elif kind == "count" and rec.objects:
            category = rng.choice(sorted({o.category for o in rec.objects}))
            k = sum(o.category == category for o in rec.objects)
            q = f"How many {plural(category)} are there in the image?"
            ans = f"{NUMBER_WORDS[k].capitalize() if k < len(NUMBER_WORDS) else k}."
        else:
            absent = [lab for lab in words.labels if lab not in names]
            q, ans = prompts.yes_no_question(rng.choice(absent)), "No."
        rows.append({"path": path, "prompt": q, "target": ans})
    return pd.DataFrame(rows)


def train_loop(config: dict) -> None:
    """Runs on every Ray Train worker: LoRA fine-tuning with a cosine schedule and warmup. A
    checkpoint every `checkpoint_every` steps; an attempt restarted after a worker failure
    resumes from the latest one (adapter, optimiser, schedule, losses) and skips the batches
    it had trained on."""
    training.setup_worker(config)
    model, processor = load_vlm(config["model"])
    with training.resumed() as (ckpt, state):
        model = add_lora(
            model,
            config["r"],
            config["alpha"],
            config["dropout"],
            config["target_modules"],
            adapter=ckpt or config["adapter"],
        )
    model.train()
    model = ray.train.torch.prepare_model(model) if ray.train.get_context().get_world_size() > 1 else model
    shard = ray.train.get_dataset_shard("train")
    steps = training.epoch_steps(config["n_rows"], config["batch_size"], config["epochs"])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config["lr"])
    sched = training.cosine_schedule(opt, steps, config["warmup"])
    losses: list[float] = []
    resumes: list[int] = []
    if state is not None:
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        losses, resumes = list(state["losses"]), [*state["resumes"], len(state["losses"])]
    every, seen, reported = config.get("checkpoint_every", 0), 0, -1

    def checkpoint() -> int:
        training.report(
            model,
            losses,
            state={
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "losses": losses,
                "resumes": resumes,
                "step": len(losses),
            },
        )
        return len(losses)

    for _ in range(config["epochs"]):
        for batch in shard.iter_batches(batch_size=config["batch_size"], batch_format="pandas"):
            seen += 1
            if seen <= len(losses):
                continue  # trained on before the restart
            ex = [
                build_example(processor, load_image(p), q, t)
                for p, q, t in zip(batch["path"], batch["prompt"], batch["target"])
            ]
            batch = families.to_model(collate(ex, processor), model)
            training.step(model(**batch).loss, opt, sched, losses, steps=steps)
            if every and len(losses) % every == 0:
                reported = checkpoint()
    if reported != len(losses):
        checkpoint()


def lora_config(cfg: Any, model: str, adapter: str | None, n_rows: int) -> dict:
    """train_loop's config from a pipeline config with SVP's train section (SVP, self-training)."""
    lora, tr = cfg.train.lora, cfg.train
    return {
        "model": model,
        "adapter": adapter,
        "r": lora.r,
        "alpha": lora.alpha,
        "dropout": lora.dropout,
        "target_modules": lora.target_modules,
        "lr": tr.lr,
        "warmup": tr.warmup,
        "epochs": tr.epochs,
        "batch_size": tr.batch_size,
        "n_rows": n_rows,
        "seed": cfg.run.seed,
        "torch_threads": tr.torch_threads,
        "checkpoint_every": getattr(getattr(cfg, "resources", None), "train_checkpoint_every", 0),
    }


def train(cfg: SVPConfig, it_dir: Path, prev_adapter: str | None, vocabulary: str = "") -> None:
    # the parts were written in the order the actors finished: sort, so the seeded shuffle below
    # sees the same rows in the same order on every run
    selected = pd.read_parquet(it_dir / "selected.parquet")
    selected = selected.sort_values([c for c in ("image_id", "sample") if c in selected], kind="stable")
    rows = pd.DataFrame({"path": selected["path"], "prompt": prompts.BASE_PROMPT, "target": selected["guided"]})
    if cfg.svp.variant == "CVQ":
        rows = pd.concat([rows, qa_rows(cfg, selected, cfg.run.seed, vocabulary)], ignore_index=True)
    rows = rows.sample(frac=1.0, random_state=cfg.run.seed).reset_index(drop=True)
    tr = cfg.train
    training.fit(
        train_loop,
        lora_config(cfg, cfg.model.vlm, prev_adapter, len(rows)),
        rows,
        it_dir / "adapter",
        name=f"{cfg.run.name}-{it_dir.name}",
        num_workers=tr.num_workers,
        cpus_per_worker=tr.cpus_per_worker,
        use_gpu=cfg.resources.gpus_per_actor > 0,
        max_failures=cfg.resources.train_max_failures,
    )
    (it_dir / "train_rows.json").write_text(str(len(rows)))
