"""Typed configs: how command-line overrides are read."""

import re
from dataclasses import dataclass, field
from typing import Literal

import pytest

from groundloop.config import ConfigError, check_ranges, load


@dataclass(frozen=True)
class Model:
    vlm: str = "shapesworld/vlm"
    init: str = "shapesworld/clip"
    adapter: str | None = "x"


@dataclass(frozen=True)
class Cfg:
    model: Model = field(default_factory=Model)


def test_an_empty_override_clears_a_string_setting_instead_of_naming_a_model_none():
    cfg = load(Cfg, None, ["model.init=", "model.adapter="])
    assert cfg.model.init == ""  # was "None", which the loader then looked up on the hub
    assert cfg.model.adapter is None
    assert load(Cfg, None, ["model.init=None"]).model.init == "None"  # an explicit string stays


@dataclass(frozen=True)
class Typed:
    k: int = 1
    t: float = 0.5
    on: bool = False
    name: str = "x"
    temps: tuple[float, ...] = (0.1,)


@pytest.mark.parametrize(
    "override, words",
    [
        ("k=2.7", "k: expected an integer, got 2.7"),
        ("k=true", "k: expected an integer, got True"),
        ("k=many", "k: expected an integer"),
        ("t=false", "t: expected a number"),
        ("t=.nan", "finite"),
        ("on=2", "on: expected true or false"),
        ("on=maybe", "on: expected true or false"),
        ("name=no", "name: expected a string, got False"),
        ("temps=5", "temps: expected a list"),
        ("temps=[0.1, x]", "temps: expected a number"),
        ("k={a: 1}", "k: expected an integer"),
        ("k=[1", "not valid YAML"),
    ],
)
def test_values_are_converted_strictly(override, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        load(Typed, None, [override])


def test_lossless_values_still_convert():
    cfg = load(Typed, None, ["k=2.0", "t=1", "on=yes", "name=7", "temps=0.2,0.4", "k='3'"])
    assert (cfg.k, cfg.t, cfg.on, cfg.name, cfg.temps) == (3, 1.0, True, "7", (0.2, 0.4))
    assert load(Typed, None, ["temps="]).temps == ()


def test_a_missing_or_broken_config_file_is_one_config_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load(Typed, tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("k: [1, 2\nname: x\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML") as e:
        load(Typed, tmp_path / "bad.yaml")
    assert "\n" not in str(e.value)


def test_ranges_name_the_key():
    check_ranges(Typed(), {"k": ">=1", "t": "(0, 1]", "temps": "[0, 2]"})
    with pytest.raises(ConfigError, match=r"^k must be >= 2, got 1$"):
        check_ranges(Typed(), {"k": ">=2"})
    with pytest.raises(ConfigError, match=r"temps must be \[0, 0.05\]"):
        check_ranges(Typed(), {"temps": "[0, 0.05]"})
    with pytest.raises(ConfigError, match="temps must not be empty"):
        check_ranges(Typed(temps=()), {"temps": "[0, 2]"})


@pytest.mark.parametrize(
    "cls, recipe",
    [
        ("pipelines.svp.config:SVPConfig", "svp_shapes"),
        ("pipelines.value.config:ValueConfig", "value_shapes"),
        ("pipelines.self_train.config:SelfTrainConfig", "self_train_shapes"),
        ("pipelines.genrm.config:GenRMConfig", "genrm_shapes"),
    ],
)
def test_pipeline_configs_check_ranges_before_anything_runs(cls, recipe):
    import importlib

    module, name = cls.split(":")
    Config = getattr(importlib.import_module(module), name)
    load(Config, f"configs/{recipe}.yaml")  # the shipped recipe passes its own checks
    for vocabulary in ("", "shapes", "coco"):
        assert load(Config, None, [f"data.vocabulary={vocabulary}"]).data.vocabulary == vocabulary
    bad = ["data.n_images=-5", "data.vocabulary=animals", "run.seed=-1", "train.num_workers=0"]
    bad += {
        "SVPConfig": ["sampling.k=0", "sampling.k=-1", "sampling.top_p=1.5", "svp.top_fraction=0"],
        "ValueConfig": ["sampling.k=0", "td.gamma=2", "sampling.temperatures=[]"],
        "SelfTrainConfig": ["serving.k=0", "serving.port=70000", "serving.decoder=beam"],
        "GenRMConfig": ["sampling.k=1", "stage2.retention=0", "stage0.balance=x"],
    }[name]
    for override in bad:
        key = override.split("=")[0]
        with pytest.raises(ConfigError, match=re.escape(key)):
            load(Config, None, [override])


@dataclass(frozen=True)
class Scoring:
    score: Literal["S", "delta"] = "S"
    vocabulary: Literal["", "shapes", "coco"] = ""
    ablations: tuple[Literal["no_feedback", "no_scoring"], ...] = ()
    engine: Literal["hf", "vllm"] | None = None


@dataclass(frozen=True)
class Chooses:
    svp: Scoring = field(default_factory=Scoring)


def test_a_choice_field_takes_only_its_values_from_yaml_and_from_the_command_line(tmp_path):
    said = "svp.score must be one of 'S', 'delta'; got 'genrm'"
    (tmp_path / "bad.yaml").write_text("svp:\n  score: genrm\n")
    with pytest.raises(ConfigError, match=f"^{re.escape(said)}$"):
        load(Chooses, tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match=f"^{re.escape(said)}$"):
        load(Chooses, None, ["svp.score=genrm"])
    with pytest.raises(ConfigError, match=re.escape("svp.score must be one of 'S', 'delta'; got True")):
        load(Chooses, None, ["svp.score=yes"])  # YAML's yes is not a choice that happens to be truthy
    with pytest.raises(ConfigError, match=re.escape("svp.ablations must be one of 'no_feedback', 'no_scoring'")):
        load(Chooses, None, ["svp.ablations=[no_feedback, none]"])
    with pytest.raises(ConfigError, match=re.escape("svp.engine must be one of 'hf', 'vllm'; got 'torch'")):
        load(Chooses, None, ["svp.engine=torch"])


def test_a_choice_field_keeps_its_values_and_an_empty_override_picks_the_empty_choice():
    cfg = load(Chooses, None, ["svp.score=delta", "svp.ablations=no_scoring", "svp.engine=vllm"])
    assert (cfg.svp.score, cfg.svp.ablations, cfg.svp.engine) == ("delta", ("no_scoring",), "vllm")
    assert load(Chooses, None, ["svp.vocabulary=coco"]).svp.vocabulary == "coco"
    assert load(Chooses, None, ["svp.vocabulary="]).svp.vocabulary == ""
    assert load(Chooses, None, ["svp.engine=null"]).svp.engine is None


def test_the_pipeline_configs_choices_are_the_cores():
    from typing import get_args

    from groundloop import vocab
    from groundloop.genrm import judge
    from groundloop.vimar import decoding
    from pipelines.common.config import Vocabulary
    from pipelines.genrm.config import Critique, Learn
    from pipelines.self_train.config import Decoder

    assert get_args(Decoder) == decoding.DECODERS
    assert get_args(Critique) == judge.CRITIQUES and get_args(Learn) == judge.LEARN
    assert get_args(Vocabulary) == ("", *vocab.NAMES)
