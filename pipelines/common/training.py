"""What every Ray Train loop of the pipelines shares: worker set-up, the cosine schedule, one
optimiser step with progress lines, the checkpoint report, resuming from the latest checkpoint
after a worker failure, and fitting a TorchTrainer into a folder. The loops themselves (SVP's
LoRA, the TD value model, VL-GenRM's stages) keep only what differs: the model, the batch and
the loss."""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import ray
import torch
from ray.data import ExecutionOptions
from ray.train import Checkpoint, CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from groundloop.data.coco import load_image


def setup_worker(config: dict) -> None:
    """Seed the worker (LoRA init, dropout) and ask torch for its deterministic kernels, so the
    same config and rows train the same adapter."""
    torch.manual_seed(config["seed"])
    torch.use_deterministic_algorithms(True, warn_only=True)
    if config.get("torch_threads"):
        torch.set_num_threads(config["torch_threads"])  # Ray pins workers to OMP_NUM_THREADS=num_cpus


def cosine_schedule(opt: torch.optim.Optimizer, steps: int, warmup: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over the first `warmup` fraction of `steps`, then cosine decay to 0."""
    warm = max(1, int(warmup * steps)) if warmup else 0

    def factor(s: int) -> float:
        ramp = min(1.0, (s + 1) / warm) if warm else 1.0
        return ramp * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def epoch_steps(n_rows: int, batch_size: int, epochs: int) -> int:
    n_rows //= max(1, ray.train.get_context().get_world_size())
    return max(1, math.ceil(n_rows / batch_size) * epochs)


class Images:
    """Each worker reads an image once, however many rows and epochs refer to it."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def __call__(self, path: str):
        if path not in self._cache:
            self._cache[path] = load_image(path)
        return self._cache[path]


def step(
    loss: torch.Tensor,
    opt: torch.optim.Optimizer,
    sched: Any,
    losses: list[float],
    *,
    steps: int,
    clip: torch.nn.Module | None = None,
    label: str = "loss",
    every: int = 25,
) -> None:
    """Backward, optional gradient-norm clipping (of `clip`'s parameters at 1.0), optimiser and
    schedule step; a progress line every `every` steps (a report per step costs more than the step)."""
    opt.zero_grad()
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(clip.parameters(), 1.0)
    opt.step()
    if sched is not None:
        sched.step()
    losses.append(loss.item())
    if len(losses) % every == 0:
        print(f"{label} step {len(losses)}/{steps} loss {sum(losses[-every:]) / every:.5f}", flush=True)


STATE_FILE = "train_state.pt"  # optimiser, schedule and losses beside a checkpoint's weights


def report(model: Any, losses: list[float], processor: Any = None, state: dict | None = None) -> None:
    """Rank 0 saves the model (a PEFT adapter or a full model, + processor) with its loss curve
    and, given `state`, the training state a restarted attempt resumes from (`resumed`); every
    worker reports, so Ray Train keeps that folder as the latest checkpoint."""
    with tempfile.TemporaryDirectory() as d:
        if ray.train.get_context().get_world_rank() == 0:
            (model.module if hasattr(model, "module") else model).save_pretrained(d)
            if processor is not None:
                processor.save_pretrained(d)
            (Path(d) / "losses.json").write_text(json.dumps(losses))
            if state is not None:
                torch.save(state, Path(d) / STATE_FILE)
                (Path(d) / "train_log.json").write_text(
                    json.dumps({"step": state.get("step"), "resumed_at": state.get("resumes", [])})
                )
        ray.train.report(
            {"loss": losses[-1] if losses else float("nan"), "step": len(losses)},
            checkpoint=Checkpoint.from_directory(d),
        )


@contextmanager
def resumed() -> Iterator[tuple[str | None, dict | None]]:
    """(checkpoint folder, training state) of the latest checkpoint when this attempt follows a
    worker failure (FailureConfig), else (None, None); the folder lives inside the block."""
    ckpt = ray.train.get_checkpoint()
    if ckpt is None:
        yield None, None
        return
    with ckpt.as_directory() as d:
        f = Path(d) / STATE_FILE
        state = torch.load(f, weights_only=False) if f.exists() else None
        print(f"resuming from checkpoint at step {state['step'] if state else '?'}", flush=True)
        yield d, state


def fit(
    loop: Callable[[dict], None],
    config: dict,
    rows: pd.DataFrame,
    out: Path,
    *,
    name: str,
    num_workers: int,
    cpus_per_worker: float,
    use_gpu: bool = False,
    max_failures: int = 0,
) -> Path:
    """Run `loop` on a TorchTrainer over `rows` and copy the final checkpoint to `out`.

    The Train run gets a fresh name every time (a re-used name would resume that old run) and
    keeps its files under out's parent in ray_train/. A failed worker restarts the worker
    group up to `max_failures` times, from the latest checkpoint the loop reported."""
    trainer = TorchTrainer(
        loop,
        train_loop_config=config,
        scaling_config=ScalingConfig(
            num_workers=num_workers, use_gpu=use_gpu, resources_per_worker={"CPU": cpus_per_worker}
        ),
        run_config=RunConfig(
            name=f"{name}-{uuid.uuid4().hex[:8]}",
            storage_path=str((out.parent / "ray_train").resolve()),
            failure_config=FailureConfig(max_failures=max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
        datasets={"train": ray.data.from_pandas(rows)},
        dataset_config=DataConfig(execution_options=ExecutionOptions(preserve_order=True)),  # rows in the given order
    )
    result = trainer.fit()
    if out.exists():
        shutil.rmtree(out)
    result.checkpoint.to_directory(str(out))
    (out / STATE_FILE).unlink(missing_ok=True)  # only a restarted attempt needs it
    return out
