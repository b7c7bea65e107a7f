"""The VL-GenRM run config: every default in one commented place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from groundloop.config import ConfigError, check_ranges
from pipelines.common import config as common
from pipelines.common.config import Lora, LoraTraining, Run, Vocabulary

# groundloop.genrm.judge.CRITIQUES and LEARN, spelled out here so loading a config stays import-light
Critique = Literal["free", "scaffold", "factored"]
Learn = Literal["all", "checks", "verdict"]


@dataclass(frozen=True)
class Data:
    path: str = "data/genrm_train"  # images whose sampled captions become preference pairs (never test)
    n_images: int = 2500
    # samples.parquet of an earlier run: judge its responses again instead of sampling new ones
    # (expert variants such as the noise study then see the very same responses)
    responses_from: str = ""
    bench_path: str = "data/shapes/test"  # ShapesWorld-RewardBench is built from these annotations
    bench_per_category: int = 100
    vocabulary: Vocabulary = ""  # object vocabulary: "shapes" or "coco"; empty = from the dataset's annotations


@dataclass(frozen=True)
class Model:
    vlm: str = "shapesworld/vlm"  # the policy whose responses are judged, and the reward model's base
    detector: str = "shapesworld/detector"  # the vision expert


@dataclass(frozen=True)
class Sampling:
    k: int = 6  # responses per image
    temperature: float = 0.9
    top_p: float = 0.95
    max_new_tokens: int = 128
    judge_max_new_tokens: int = 200  # a critique of two 6-object captions is ~140 tokens
    # How the reward model writes its critique when judging (groundloop.genrm.judge.GenRM): "free"
    # (all of it), "scaffold" (the claims come from parsing the responses; the model writes
    # each check inside the judgement, then the verdict) or "factored" (the same claims, each
    # checked by its own yes/no question about the image, then the verdict)
    critique: Critique = "free"


@dataclass(frozen=True)
class Pairs:
    labeler: Literal["expert", "self"] = "expert"  # self: the VLM's own belief (the baseline without the expert)
    thought: Literal["critique", "description"] = "critique"  # check every claim | say what the image shows
    max_per_image: int = 4
    # plus up to this many pairs per image of two responses with refuted claims, fewer refuted
    # over more (rm.build_pairs(graded=)): the judge learns to weigh "A 1, B 2", not only "A 0, B 1"
    graded_per_image: int = 0
    # plus up to this many pairs per image of two verified responses, the one with more verified
    # claims the other does not make over the other (rm.build_pairs(complete=)): with the
    # tally's second rule (more confirmed wins when refuted tie) the judge learns completeness
    complete_per_image: int = 0
    # plus up to this many pairs per image drawn uniformly from all pairs the expert's checks
    # separate by the tally (rm.build_pairs(separable=)): the verdict learns to follow the tally
    # on the comparisons Best-of-N makes, not only on "A 0, B 1"
    separable_per_image: int = 0
    # Expert-noise study: the detector misses a true object / reports an absent one this often.
    miss_rate: float = 0.0
    false_alarm_rate: float = 0.0


@dataclass(frozen=True)
class Train(LoraTraining):
    lora: Lora = field(default_factory=lambda: Lora(r=64, alpha=128, dropout=0.0))
    lr: float = 2e-3
    epochs: int = 2
    torch_threads: int = 2  # training runs alone on the 2 cores
    lam: float = 1.0  # weight of the correctness-weighted Bradley-Terry term in the mixture loss
    # Grounded attention in stage 1: at each claim the expert-composed critique checks, the
    # head stage0.attn_layer / attn_head is trained to look at the expert's boxes (0 = off).
    attn_weight: float = 0.0
    # What stage 1 learns of a critique: "all" its tokens; only the "checks" (yes / no), the
    # verdict and EOS (the scaffold hands the judge the claim text); or only the "verdict" and
    # EOS (factored critiques are answered outside the judgement); no_weight: the loss weight
    # of a "no" check
    learn: Learn = "all"
    no_weight: float = 1.0


@dataclass(frozen=True)
class Stage0:
    # Before stage 1, the whole VLM is fine-tuned on the expert's per-claim evidence as yes/no
    # questions ("Is there a small red circle in the image?"), balanced. Without it the
    # ShapesWorld VLM never learns to check a phrase against the image (RewardBench at chance;
    # benchmarks/probes/vlm_presence_probe.py: the skill appears only after ~1000 focused steps).
    steps: int = 2000  # 0 = skip: stage 1 starts from model.vlm
    lr: float = 1e-4
    batch_size: int = 16
    # Grounded attention (groundloop.genrm.grounded_attention): the expert's boxes supervise where one
    # head looks at each claim's last token. 0 = off (yes/no answers alone).
    attn_weight: float = 0.0
    attn_layer: int = 1
    attn_head: int = 0
    # A stage-0 VLM folder from an earlier run on the same responses (e.g. runs/x/stage0/vlm):
    # copied instead of trained, so a variant that changes only stage 1 (pairs.thought=description)
    # shares the recipe run's verifier. Empty: train stage 0 here.
    vlm_from: str = ""
    # Factored critiques (sampling.critique=factored): the check threshold on the stage-0 VLM's
    # Yes-No logit margin is calibrated on the claims of this many training pairs (0: threshold 0)
    calibration_pairs: int = 300
    # How the yes/no questions are balanced: "kind" (as many "No." as "Yes." among object claims
    # and among count claims) or "phrase" (as many per claim phrase, e.g. "small red circle",
    # so the phrase alone never predicts the answer: the policy's hallucinations are not uniform,
    # and with "kind" the checker can learn which phrases are usually wrong instead of looking)
    balance: Literal["kind", "phrase"] = "kind"
    # Extra questions per training image about object phrases none of its responses made (drawn
    # from the vocabulary of all responses' claims, rm.probe_phrases), answered by the expert
    # (by the VLM's own belief for pairs.labeler=self): the policy's false claims are its habitual
    # confusions, and without these the checker rarely sees an object that is simply absent. 0: none
    probes: int = 0


@dataclass(frozen=True)
class Stage2:
    rounds: int = 2  # margin-based rejection sampling + LoRA rounds after stage 1
    n_pairs: int = 300  # training pairs re-judged per round
    samples: int = 4  # critiques sampled per pair
    temperature: float = 0.8
    # keep this fraction of sampled critiques (correct ones, highest margin), within each right
    # label (rm.reject_per_label: one threshold for all amplifies a lean to A or B)
    retention: float = 0.4
    epochs: int = 1
    lr: float = 5e-4


@dataclass(frozen=True)
class Resources(common.Resources):
    batch_size: int = 8  # images per sampler call (the expert takes their k responses each)
    sampler_actors: int = 1
    sampler_cpus: float = 0.5  # fractional: whole-CPU actors starve the read task on 2 cores
    expert_actors: int = 1
    expert_cpus: float = 0.25
    judge_actors: int = 1
    judge_cpus: float = 0.5
    judge_batch: int = 32  # pairs per judge call (one batched generate)
    judge_threads: int = 2  # judging runs alone (no sampler or trainer beside it): use both cores


@dataclass(frozen=True)
class GenRMConfig:
    run: Run = field(default_factory=lambda: Run(name="genrm_shapes"))
    data: Data = field(default_factory=Data)
    model: Model = field(default_factory=Model)
    sampling: Sampling = field(default_factory=Sampling)
    pairs: Pairs = field(default_factory=Pairs)
    train: Train = field(default_factory=Train)
    stage0: Stage0 = field(default_factory=Stage0)
    stage2: Stage2 = field(default_factory=Stage2)
    resources: Resources = field(default_factory=Resources)

    def __post_init__(self) -> None:
        check_ranges(self, common.ranges(self) | RANGES)
        if self.sampling.critique != "free" and self.pairs.thought != "critique":
            raise ConfigError(
                f"sampling.critique={self.sampling.critique} writes critiques: it needs pairs.thought=critique"
            )


RANGES = {
    "data.n_images": ">=1",
    "data.bench_per_category": ">=1",
    "sampling.k": ">=2",
    "sampling.temperature": "[0, 100]",
    "sampling.top_p": "(0, 1]",
    "sampling.max_new_tokens": ">=1",
    "sampling.judge_max_new_tokens": ">=1",
    "pairs.max_per_image": ">=0",
    "pairs.graded_per_image": ">=0",
    "pairs.complete_per_image": ">=0",
    "pairs.separable_per_image": ">=0",
    "pairs.miss_rate": "[0, 1]",
    "pairs.false_alarm_rate": "[0, 1]",
    "train.lam": ">=0",
    "train.attn_weight": ">=0",
    "train.no_weight": ">=0",
    "stage0.steps": ">=0",
    "stage0.lr": ">0",
    "stage0.batch_size": ">=1",
    "stage0.attn_weight": ">=0",
    "stage0.attn_layer": ">=0",
    "stage0.attn_head": ">=0",
    "stage0.calibration_pairs": ">=0",
    "stage0.probes": ">=0",
    "stage2.rounds": ">=0",
    "stage2.n_pairs": ">=1",
    "stage2.samples": ">=1",
    "stage2.temperature": "[0, 100]",
    "stage2.retention": "(0, 1]",
    "stage2.epochs": ">=1",
    "stage2.lr": ">0",
    "resources.judge_batch": ">=1",
    "resources.judge_threads": ">=0",
}
