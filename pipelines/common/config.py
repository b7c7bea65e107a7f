"""The config sections every workflow shares, defined once: the run folder (`Run`), LoRA
(`Lora`), the Ray Train worker group (`Workers`, the base of each `train` section) and the
actor pools (`Resources`, whose `pool(name)` is the `Pool` an `ActorStage` runs with). A
workflow sets its own defaults with `field(default_factory=lambda: Run(name="svp_shapes"))`
or by re-declaring a field in its subclass; the keys stay the ones the recipes use."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from groundloop.config import ConfigError

# groundloop.vocab: "shapes" or "coco"; "" = from the dataset's annotations
Vocabulary = Literal["", "shapes", "coco"]


@dataclass(frozen=True)
class Run:
    name: str = "run"  # the run folder under `dir`; re-running with the same name resumes it
    dir: str = "runs"
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigError("run.name must not be empty")


@dataclass(frozen=True)
class Lora:
    r: int = 16  # paper: 64
    alpha: int = 16
    dropout: float = 0.05
    # a regex over module names; empty: the language model's projections of the VLM's family
    # (groundloop.models.families), so the vision tower is never adapted
    target_modules: str = ""


@dataclass(frozen=True)
class Workers:
    """The Ray Train worker group of a `train` section (each workflow's Train extends it)."""

    num_workers: int = 1
    cpus_per_worker: float = 1.0
    torch_threads: int = 0  # 0: what Ray gives the worker; on a 2-core box training runs alone, so 2


@dataclass(frozen=True)
class LoraTraining(Workers):
    """A LoRA fine-tuning `train` section (SVP, self-training, VL-GenRM's stages 1 and 2)."""

    lora: Lora = field(default_factory=Lora)
    lr: float = 2e-4
    warmup: float = 0.03  # fraction of the steps spent warming the learning rate up
    epochs: int = 1
    batch_size: int = 8


@dataclass(frozen=True)
class Pool:
    """One Ray Data actor pool: how many actors, each one's CPUs and GPUs, rows per call."""

    actors: int = 1
    cpus: float = 1.0
    gpus: float = 0.0
    batch_size: int = 1


@dataclass(frozen=True)
class Resources:
    """What a workflow's actor pools share; the workflow's Resources adds `<pool>_actors` and
    `<pool>_cpus` for each of its pools (`sampler_actors`, `sampler_cpus`, ...)."""

    gpus_per_actor: float = 0.0  # each model actor's GPUs (fractional: actors share a GPU)
    batch_size: int = 4  # images per actor call

    def pool(self, name: str, batch_size: int | None = None, gpus: bool = True) -> Pool:
        """The `<name>_actors` x `<name>_cpus` pool, with `<name>_gpus` each where the workflow
        has that field, else gpus_per_actor unless `gpus` is False (a CPU-only model), calling its
        actors with `batch_size` rows (default: batch_size)."""
        return Pool(
            actors=getattr(self, f"{name}_actors"),
            cpus=getattr(self, f"{name}_cpus"),
            gpus=getattr(self, f"{name}_gpus", self.gpus_per_actor if gpus else 0.0),
            batch_size=batch_size or self.batch_size,
        )


def ranges(cfg: Any) -> dict[str, str]:
    """The ranges of the shared sections in `cfg` (groundloop.config.check_ranges), by dotted key."""
    out: dict[str, str] = {}
    if isinstance(getattr(cfg, "run", None), Run):
        out["run.seed"] = ">=0"
    train = getattr(cfg, "train", None)
    if isinstance(train, Workers):
        out |= {"train.num_workers": ">=1", "train.cpus_per_worker": ">0", "train.torch_threads": ">=0"}
    if isinstance(train, LoraTraining):
        out |= {
            "train.lora.r": ">=1",
            "train.lora.alpha": ">0",
            "train.lora.dropout": "[0, 1)",
            "train.lr": ">0",
            "train.warmup": "[0, 1]",
            "train.epochs": ">=1",
            "train.batch_size": ">=1",
        }
    res = getattr(cfg, "resources", None)
    if isinstance(res, Resources):
        out |= {"resources.gpus_per_actor": ">=0", "resources.batch_size": ">=1"}
        for f in dataclasses.fields(res):
            if f.name.endswith("_actors"):
                out[f"resources.{f.name}"] = ">=1"
            elif f.name.endswith("_cpus"):
                out[f"resources.{f.name}"] = ">0"
            elif f.name.endswith("_gpus"):
                out[f"resources.{f.name}"] = ">=0"
    return out
