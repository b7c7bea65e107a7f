"""The ViMaR self-training run config: every default in one commented place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from groundloop.config import ConfigError, check_ranges
from pipelines.common import config as common
from pipelines.common.config import LoraTraining, Run, Vocabulary

# groundloop.vimar.decoding.DECODERS, spelled out here so loading a config stays import-light
Decoder = Literal["greedy", "bon", "genrm_bon", "clip_prm", "visvm", "vimar"]


@dataclass(frozen=True)
class Data:
    path: str = "data/shapes/val"  # unlabeled images captioned by the endpoint
    n_images: int = 200
    eval_path: str = "data/shapes/test"
    eval_n_images: int = 200
    vocabulary: Vocabulary = ""  # object vocabulary: "shapes" or "coco"; empty = from the dataset's annotations


@dataclass(frozen=True)
class Serving:
    app_name: str = "self_train"
    port: int = 8000
    vlm: str = "shapesworld/vlm"
    value: str = "shapesworld/value"
    clip: str = "shapesworld/clip"
    decoder: Decoder = "vimar"
    temperatures: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)
    k: int = 6
    max_batch_size: int = 8
    replica_cpus: float = 0.5  # fractional: the Train worker needs the rest of a 2-core box
    torch_threads: int = 2
    keep_running: bool = False  # leave the endpoint up (serving the last adapter) after the run


@dataclass(frozen=True)
class SelfTrain:
    rounds: int = 1
    max_new_tokens: int = 160


@dataclass(frozen=True)
class Train(LoraTraining):
    lr: float = 2e-3
    epochs: int = 3
    torch_threads: int = 2


@dataclass(frozen=True)
class SelfTrainConfig:
    run: Run = field(default_factory=lambda: Run(name="self_train_shapes"))
    data: Data = field(default_factory=Data)
    serving: Serving = field(default_factory=Serving)
    self_train: SelfTrain = field(default_factory=SelfTrain)
    train: Train = field(default_factory=Train)

    def __post_init__(self) -> None:
        check_ranges(self, common.ranges(self) | RANGES)
        if not self.serving.app_name.strip():
            raise ConfigError("serving.app_name must not be empty")


RANGES = {
    "data.n_images": ">=1",
    "data.eval_n_images": ">=1",
    "serving.port": "[1, 65535]",
    "serving.temperatures": "[0, 2]",
    "serving.k": "[1, 16]",
    "serving.max_batch_size": ">=1",
    "serving.replica_cpus": ">0",
    "serving.torch_threads": ">=0",
    "self_train.rounds": ">=1",
    "self_train.max_new_tokens": ">=1",
}
