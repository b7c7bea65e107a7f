"""The ViMaR self-training run config: every default in one commented place."""

from __future__ import annotations

from dataclasses import dataclass, field

from groundloop.config import ConfigError, check_choice, check_ranges
from pipelines.svp.config import VOCABULARIES, Lora

DECODERS = (
    "greedy",
    "bon",
    "genrm_bon",
    "clip_prm",
    "visvm",
    "vimar",
)  # groundloop.vimar.decoding.DECODERS (import-light)


@dataclass(frozen=True)
class Run:
    name: str = "self_train_shapes"
    dir: str = "runs"
    seed: int = 0


@dataclass(frozen=True)
class Data:
    path: str = "data/shapes/val"  # unlabeled images captioned by the endpoint
    n_images: int = 200
    eval_path: str = "data/shapes/test"
    eval_n_images: int = 200
    vocabulary: str = ""  # object vocabulary: "shapes" or "coco"; empty = from the dataset's annotations


@dataclass(frozen=True)
class Serving:
    app_name: str = "self_train"
    port: int = 8000
    vlm: str = "shapesworld/vlm"
    value: str = "shapesworld/value"
    clip: str = "shapesworld/clip"
    decoder: str = "vimar"
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
class Train:
    lora: Lora = field(default_factory=Lora)
    lr: float = 2e-3
    warmup: float = 0.03
    epochs: int = 3
    batch_size: int = 8
    num_workers: int = 1
    cpus_per_worker: float = 1.0
    torch_threads: int = 2


@dataclass(frozen=True)
class SelfTrainConfig:
    run: Run = field(default_factory=Run)
    data: Data = field(default_factory=Data)
    serving: Serving = field(default_factory=Serving)
    self_train: SelfTrain = field(default_factory=SelfTrain)
    train: Train = field(default_factory=Train)

    def __post_init__(self) -> None:
        check_ranges(self, RANGES)
        check_choice("data.vocabulary", self.data.vocabulary, VOCABULARIES)
        check_choice("serving.decoder", self.serving.decoder, DECODERS)
        if not self.run.name.strip():
            raise ConfigError("run.name must not be empty")
        if not self.serving.app_name.strip():
            raise ConfigError("serving.app_name must not be empty")


RANGES = {
    "run.seed": ">=0",
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
}
