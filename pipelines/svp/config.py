"""The SVP run config: every default in one commented place."""

from __future__ import annotations

from dataclasses import dataclass, field

from groundloop.config import ConfigError, check_choice, check_ranges

VOCABULARIES = ("", "shapes", "coco")  # groundloop.vocab: "" = from the dataset's annotations


@dataclass(frozen=True)
class Run:
    name: str = "svp_shapes"
    dir: str = "runs"
    seed: int = 0


@dataclass(frozen=True)
class Data:
    path: str = "data/shapes/train"  # ShapesWorld-layout folder used for self-training
    n_images: int = 64
    eval_path: str = "data/shapes/test"  # held-out split evaluated before and after each iteration
    eval_n_images: int = 100
    vocabulary: str = ""  # object vocabulary: "shapes" or "coco"; empty = from the dataset's annotations


@dataclass(frozen=True)
class Model:
    vlm: str = "shapesworld/vlm"
    detector: str = "shapesworld/detector"
    reward_model: str = "shapesworld/genrm"  # VL-GenRM folder, for svp.score=genrm
    # who samples: "hf" (transformers) or "vllm" (GPU nodes, the vllm extra); scoring is always
    # the transformers teacher-forcing scorer (S and Delta need full-vocabulary log-probs)
    engine: str = "hf"


@dataclass(frozen=True)
class Sampling:
    k: int = 8  # paper: 20; K samples per image (prior), each grounded and resampled once
    temperature: float = 1.0
    top_p: float = 0.95
    max_new_tokens: int = 120


@dataclass(frozen=True)
class SVP:
    top_fraction: float = 0.2
    score: str = "S"  # "S" (log-ratio), "delta" (weighted difference) or "genrm" (VL-GenRM, round robin)
    variant: str = "C"  # "C" captions only, "CVQ" adds as many yes/no and counting QA pairs
    # Phrases the detector grounds for a guided sample: "sample" = its own prior's (the paper),
    # "image" = the union over the image's K priors (fuller context, cleaner guided samples)
    grounding: str = "sample"
    iterations: int = 1
    ablation: str = "none"  # "none", "no_feedback", "no_scoring"
    # After the run, repeat it with these ablations (same recipe and budget), reported under
    # report.json "ablations"; e.g. [no_feedback, no_scoring]
    compare_ablations: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lora:
    r: int = 16  # paper: 64
    alpha: int = 16
    dropout: float = 0.05
    # a regex over module names; empty: the language model's projections of the VLM's family
    # (groundloop.models.families), so the vision tower is never adapted
    target_modules: str = ""


@dataclass(frozen=True)
class Train:
    lora: Lora = field(default_factory=Lora)
    lr: float = 2e-4
    warmup: float = 0.03
    epochs: int = 1
    batch_size: int = 8
    num_workers: int = 1
    cpus_per_worker: float = 1.0
    torch_threads: int = 0  # 0: what Ray gives the worker; on a 2-core box training runs alone, so 2


@dataclass(frozen=True)
class Resources:
    sampler_actors: int = 1
    sampler_cpus: float = 0.5  # fractional: whole-CPU actors starve the read task on 2 cores
    grounder_actors: int = 1
    grounder_cpus: float = 0.25
    scorer_actors: int = 1
    scorer_cpus: float = 0.5
    gpus_per_actor: float = 0.0
    batch_size: int = 4  # images (or samples) per actor call; also the images per streamed block
    # A Ray Train worker that dies (its process, its node) restarts the worker group up to this
    # many times, from the latest checkpoint; -1: without limit
    train_max_failures: int = 3
    train_checkpoint_every: int = 100  # optimiser steps between checkpoints (adapter + optimiser state)


@dataclass(frozen=True)
class SVPConfig:
    run: Run = field(default_factory=Run)
    data: Data = field(default_factory=Data)
    model: Model = field(default_factory=Model)
    sampling: Sampling = field(default_factory=Sampling)
    svp: SVP = field(default_factory=SVP)
    train: Train = field(default_factory=Train)
    resources: Resources = field(default_factory=Resources)

    def __post_init__(self) -> None:
        check_ranges(self, RANGES)
        check_choice("data.vocabulary", self.data.vocabulary, VOCABULARIES)
        check_choice("model.engine", self.model.engine, ("hf", "vllm"))
        check_choice("svp.score", self.svp.score, ("S", "delta", "genrm"))
        check_choice("svp.variant", self.svp.variant, ("C", "CVQ"))
        check_choice("svp.ablation", self.svp.ablation, ("none", "no_feedback", "no_scoring"))
        check_choice("svp.grounding", self.svp.grounding, ("sample", "image"))
        bad = [x for x in self.svp.compare_ablations if x not in ("no_feedback", "no_scoring")]
        if bad:
            raise ConfigError(f"svp.compare_ablations takes no_feedback and/or no_scoring, got {bad}")
        if not self.run.name.strip():
            raise ConfigError("run.name must not be empty")


RANGES = {
    "run.seed": ">=0",
    "data.n_images": ">=1",
    "data.eval_n_images": ">=1",
    "sampling.k": ">=1",
    "sampling.temperature": "[0, 100]",
    "sampling.top_p": "(0, 1]",
    "sampling.max_new_tokens": ">=1",
    "svp.top_fraction": "(0, 1]",
    "svp.iterations": ">=0",
    "train.lora.r": ">=1",
    "train.lora.alpha": ">0",
    "train.lora.dropout": "[0, 1)",
    "train.lr": ">0",
    "train.warmup": "[0, 1]",
    "train.epochs": ">=1",
    "train.batch_size": ">=1",
    "train.num_workers": ">=1",
    "train.cpus_per_worker": ">0",
    "train.torch_threads": ">=0",
    "resources.sampler_actors": ">=1",
    "resources.sampler_cpus": ">0",
    "resources.grounder_actors": ">=1",
    "resources.grounder_cpus": ">0",
    "resources.scorer_actors": ">=1",
    "resources.scorer_cpus": ">0",
    "resources.gpus_per_actor": ">=0",
    "resources.batch_size": ">=1",
    "resources.train_max_failures": ">=-1",
    "resources.train_checkpoint_every": ">=0",
}
