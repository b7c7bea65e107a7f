"""The SVP run config: every default in one commented place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from groundloop.config import check_ranges
from pipelines.common import config as common
from pipelines.common.config import LoraTraining, Run, Vocabulary

Ablation = Literal["no_feedback", "no_scoring"]


@dataclass(frozen=True)
class Data:
    path: str = "data/shapes/train"  # ShapesWorld-layout folder used for self-training
    n_images: int = 64
    eval_path: str = "data/shapes/test"  # held-out split evaluated before and after each iteration
    eval_n_images: int = 100
    vocabulary: Vocabulary = ""  # object vocabulary: "shapes" or "coco"; empty = from the dataset's annotations


@dataclass(frozen=True)
class Model:
    vlm: str = "shapesworld/vlm"
    detector: str = "shapesworld/detector"
    reward_model: str = "shapesworld/genrm"  # VL-GenRM folder, for svp.score=genrm
    # who samples: "hf" (transformers) or "vllm" (GPU nodes, the vllm extra); scoring is always
    # the transformers teacher-forcing scorer (S and Delta need full-vocabulary log-probs)
    engine: Literal["hf", "vllm"] = "hf"


@dataclass(frozen=True)
class Sampling:
    k: int = 8  # paper: 20; K samples per image (prior), each grounded and resampled once
    temperature: float = 1.0
    top_p: float = 0.95
    max_new_tokens: int = 120


@dataclass(frozen=True)
class SVP:
    top_fraction: float = 0.2
    # "S" (log-ratio), "delta" (weighted difference) or "genrm" (VL-GenRM, round robin)
    score: Literal["S", "delta", "genrm"] = "S"
    variant: Literal["C", "CVQ"] = "C"  # "C" captions only, "CVQ" adds as many yes/no and counting QA pairs
    # Phrases the detector grounds for a guided sample: "sample" = its own prior's (the paper),
    # "image" = the union over the image's K priors (fuller context, cleaner guided samples)
    grounding: Literal["sample", "image"] = "sample"
    iterations: int = 1
    ablation: Literal["none", "no_feedback", "no_scoring"] = "none"
    # After the run, repeat it with these ablations (same recipe and budget), reported under
    # report.json "ablations"; e.g. [no_feedback, no_scoring]
    compare_ablations: tuple[Ablation, ...] = ()


Train = LoraTraining  # LoRA r 16 (paper: 64), lr 2e-4, 1 epoch


@dataclass(frozen=True)
class Resources(common.Resources):
    # batch_size: images per prior call, and the images per streamed block (the later pools
    # take its K samples per image)
    sampler_actors: int = 1
    sampler_cpus: float = 0.5  # fractional: whole-CPU actors starve the read task on 2 cores
    grounder_actors: int = 1
    grounder_cpus: float = 0.25
    grounder_gpus: float = 0.0  # > 0 puts the detector (GroundingDINO) on the GPUs; ShapesWorld's runs on CPU
    scorer_actors: int = 1
    scorer_cpus: float = 0.5
    # A Ray Train worker that dies (its process, its node) restarts the worker group up to this
    # many times, from the latest checkpoint; -1: without limit
    train_max_failures: int = 3
    train_checkpoint_every: int = 100  # optimiser steps between checkpoints (adapter + optimiser state)


@dataclass(frozen=True)
class SVPConfig:
    run: Run = field(default_factory=lambda: Run(name="svp_shapes"))
    data: Data = field(default_factory=Data)
    model: Model = field(default_factory=Model)
    sampling: Sampling = field(default_factory=Sampling)
    svp: SVP = field(default_factory=SVP)
    train: Train = field(default_factory=Train)
    resources: Resources = field(default_factory=Resources)

    def __post_init__(self) -> None:
        check_ranges(self, common.ranges(self) | RANGES)


RANGES = {
    "data.n_images": ">=1",
    "data.eval_n_images": ">=1",
    "sampling.k": ">=1",
    "sampling.temperature": "[0, 100]",
    "sampling.top_p": "(0, 1]",
    "sampling.max_new_tokens": ">=1",
    "svp.top_fraction": "(0, 1]",
    "svp.iterations": ">=0",
    "resources.train_max_failures": ">=-1",
    "resources.train_checkpoint_every": ">=0",
}
