"""The ViMaR value-model run config: every default in one commented place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from groundloop.config import ConfigError, check_ranges
from pipelines.common import config as common
from pipelines.common.config import Run, Vocabulary, Workers


@dataclass(frozen=True)
class Data:
    path: str = "data/shapes/val"  # images whose captions become TD transitions (never test)
    n_images: int = 200
    vocabulary: Vocabulary = ""  # object vocabulary: "shapes" or "coco"; empty = from the dataset's annotations


@dataclass(frozen=True)
class Model:
    vlm: str = "shapesworld/vlm"  # the policy whose captions are valued, and the backbone
    clip: str = "shapesworld/clip"
    # Start the value model's vision tower from this CLIP's ('' = keep the VLM's own). Only for
    # a CLIP whose vision tower has the VLM tower's architecture, as ShapesWorld's does.
    vision_init: str = ""


@dataclass(frozen=True)
class Sampling:
    # Per image: the greedy caption plus k captions at each temperature (paper: 0.2 to 0.8,
    # top-p 0.9), plus the ground-truth caption when the dataset has one.
    temperatures: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
    k: int = 2
    top_p: float = 0.9
    max_new_tokens: int = 160
    ground_truth: bool = True


@dataclass(frozen=True)
class Reward:
    tau_percentile: float = 17.0  # tau = this percentile of CLIP delta over generated sentences
    alpha: float = 1.0  # slope of the penalty below tau
    gt_percentile: float = 90.0  # ground-truth sentences get this percentile of delta as reward


@dataclass(frozen=True)
class TD:
    gamma: float = 0.9
    epochs: int = 2
    lr: float = 1e-4  # backbone; the head learns 10x faster
    batch_size: int = 32
    # Decoding calls a sentence weak below this percentile of V over the training sentences
    weak_percentile: float = 25.0
    # what the value head reads: the sentence's "last" token, the "mean" over its tokens, or "match"
    # (its tokens matched against the image tokens, groundloop.vimar.value.MatchHead)
    pool: Literal["last", "mean", "match"] = "last"
    # with pool "match": the image tokens are read "input" (as the LM receives them, the projected
    # vision features) or "last" (the LM's last hidden states at the image positions)
    match_keys: Literal["last", "input"] = "last"
    # Counterfactual steps: this fraction of the generated sentences also enter training with one
    # word swapped inside its group of `swap_groups` (space-separated words, e.g. the colours),
    # scored by the same CLIP reward and followed by the original next sentence (0 = off)
    counterfactuals: float = 0.0
    swap_groups: tuple[str, ...] = ()
    # > 0: V = R + C with a second head R that also regresses each step's own reward, weighted
    # by this against the TD loss (groundloop.vimar.value.ValueModel, meta reward_head); 0 = one head
    reward_weight: float = 0.0


Train = Workers  # the TD fit's worker group; what it learns is under td


@dataclass(frozen=True)
class Resources(common.Resources):
    sampler_actors: int = 1
    sampler_cpus: float = 0.5  # fractional: whole-CPU actors starve the read task on 2 cores
    clip_actors: int = 1
    clip_cpus: float = 0.25


@dataclass(frozen=True)
class ValueConfig:
    run: Run = field(default_factory=lambda: Run(name="value_shapes"))
    data: Data = field(default_factory=Data)
    model: Model = field(default_factory=Model)
    sampling: Sampling = field(default_factory=Sampling)
    reward: Reward = field(default_factory=Reward)
    td: TD = field(default_factory=TD)
    train: Train = field(default_factory=Train)
    resources: Resources = field(default_factory=Resources)

    def __post_init__(self) -> None:
        check_ranges(self, common.ranges(self) | RANGES)
        if self.td.counterfactuals and not any(len(g.split()) > 1 for g in self.td.swap_groups):
            raise ConfigError("td.counterfactuals needs td.swap_groups with at least two words in a group")


RANGES = {
    "data.n_images": ">=1",
    "sampling.temperatures": "[0, 100]",
    "sampling.k": ">=1",
    "sampling.top_p": "(0, 1]",
    "sampling.max_new_tokens": ">=1",
    "reward.tau_percentile": "[0, 100]",
    "reward.alpha": ">=0",
    "reward.gt_percentile": "[0, 100]",
    "td.gamma": "[0, 1]",
    "td.epochs": ">=1",
    "td.lr": ">0",
    "td.batch_size": ">=1",
    "td.weak_percentile": "[0, 100]",
    "td.counterfactuals": "[0, 1]",
    "td.reward_weight": ">=0",
}
