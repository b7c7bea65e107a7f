"""Typed configs: how command-line overrides are read."""

from dataclasses import dataclass, field

from groundloop.config import load


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
