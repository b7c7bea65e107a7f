"""Typed configs: frozen dataclasses are the source of truth, YAML recipes and dotted
command-line overrides (`sampling.k=20 train.lora.r=64`) fill them; unknown keys are errors,
and a `typing.Literal[...]` field takes only its listed values."""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config key or value the dataclasses do not accept; the message names the key."""


def _number(value: Any, tp: type, key: str) -> Any:
    """An int or float setting, strictly: no bool, no 2.7 for an int, no nan or inf."""
    kind = "an integer" if tp is int else "a number"
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected {kind}, got {value!r}")
    if isinstance(value, str):
        try:
            value = int(value) if tp is int else float(value)
        except ValueError:
            raise ConfigError(f"{key}: expected {kind}, got {value!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: expected a finite number, got {value!r}")
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int):
            raise ConfigError(f"{key}: expected {kind}, got {value!r}")
        return value
    if not isinstance(value, (int, float)):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    return float(value)


def _choice(value: Any, allowed: tuple[Any, ...], key: str) -> Any:
    """A `typing.Literal` setting: one of its values, exactly (no True for 1, no 1 for "1")."""
    if value is None and "" in allowed:  # `key=` on the command line: the empty choice
        return ""
    for a in allowed:
        if type(value) is type(a) and value == a:
            return a
    raise ConfigError(f"{key} must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}")


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return _choice(value, typing.get_args(tp), key)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _convert(value, args[0], key)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")  # type: ignore[arg-type]
    if origin is tuple:
        (inner, *_) = typing.get_args(tp)
        if value is None:  # `key=` on the command line: the empty tuple
            items = []
        elif isinstance(value, str):
            items = [v for v in value.split(",") if v.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_convert(v, inner, key) for v in items)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
            return value.lower() in ("true", "yes")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp in (int, float):
        return _number(value, tp, key)
    if tp is str:
        if value is None:  # `key=` on the command line: the empty string, not "None"
            return ""
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ConfigError(f"{key}: expected a string, got {value!r} (quote it)")
        return str(value)
    return value


_RANGE = re.compile(r"^(>=|>|<=|<)\s*(-?[\d.]+)$|^([\[(])\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*([\])])$")


def _within(value: float, spec: str) -> bool:
    m = _RANGE.match(spec)
    if not m:
        raise ValueError(f"bad range {spec!r}")
    if m.group(1):
        op, bound = m.group(1), float(m.group(2))
        return {">=": value >= bound, ">": value > bound, "<=": value <= bound, "<": value < bound}[op]
    lo, hi = float(m.group(4)), float(m.group(5))
    above = value >= lo if m.group(3) == "[" else value > lo
    below = value <= hi if m.group(6) == "]" else value < hi
    return above and below


def check_ranges(cfg: Any, ranges: dict[str, str]) -> None:
    """Raise ConfigError naming the first dotted key of `cfg` outside its range. A range is
    ">=1", ">0", "[0, 1]", "(0, 1]", ...; a tuple value is checked item by item and must not
    be empty."""
    for key, spec in ranges.items():
        value: Any = cfg
        for part in key.split("."):
            value = getattr(value, part)
        values = value if isinstance(value, tuple) else (value,)
        if not values:
            raise ConfigError(f"{key} must not be empty")
        for v in values:
            if v is not None and not _within(v, spec):
                shown = re.sub(r"^(>=|>|<=|<)\s*", r"\1 ", spec)
                raise ConfigError(f"{key} must be {shown}, got {value!r}")


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(str(k) for k in set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key(s): {', '.join(prefix + k for k in unknown)} "
            f"(known under {prefix or 'top level'}: {', '.join(sorted(names))})"
        )
    return cls(**{k: _convert(v, hints[k], prefix + k) for k, v in data.items()})


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`a.b.c=value` strings applied to a nested dict (values parsed as YAML scalars)."""
    out = yaml.safe_load(yaml.safe_dump(data)) or {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value")
        key, raw = item.split("=", 1)
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {key!r}: {p!r} is not a section")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({' '.join(str(e).split())})") from None
    return out


def load(cls: type[T], path: str | Path | None, overrides: list[str] | None = None) -> T:
    """The config of `cls` from a YAML file (or defaults) plus dotted overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot read the config file ({e})") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        data = loaded or {}
    return from_dict(cls, apply_overrides(data, overrides or []))
