"""What every pipeline entry point does first: parse `--config` + dotted overrides into its
frozen config, create the run folder with the resolved config in it, and join or start Ray."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TypeVar

import ray

from groundloop import config as config_lib

T = TypeVar("T")


def parser(doc: str | None, recipe: str, example: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help=f"YAML recipe, e.g. {recipe}")
    p.add_argument("overrides", nargs="*", help=f"dotted overrides, e.g. {example}")
    return p


def load(cls: type[T], args: argparse.Namespace) -> T:
    """The config, or exit with a message naming the bad key or value."""
    try:
        return config_lib.load(cls, args.config, args.overrides)
    except (config_lib.ConfigError, ValueError) as e:
        sys.exit(f"config error: {e}")


# Settings a resumed run may change: where and how wide things run, not what is computed.
RESUME_SAFE = ("resources.", "train.num_workers", "train.cpus_per_worker", "train.torch_threads",
               "svp.compare_ablations", "svp.iterations")  # more iterations extend a run


class ConfigChanged(ValueError):
    """A re-run under an existing run.name with other settings: resuming would mix the old
    run's finished stages with the new settings."""


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flatten(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def changed_settings(old: dict, new: dict) -> list[str]:
    """`key: old -> new` for every dotted key whose value differs between two resolved configs
    (as JSON-loaded dicts), resume-safe keys aside."""
    a, b = _flatten(old), _flatten(new)
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(a.keys() | b.keys())
            if a.get(k) != b.get(k) and not k.startswith(RESUME_SAFE)]


def start_run(cfg: Any, label: str) -> Path:
    """run.dir/run.name as an absolute path (Ray Train workers run in another folder, so a
    relative adapter path would not be found there), created, with the resolved config in it.

    A folder that already holds a run is resumed, but only with the same settings: otherwise
    ConfigChanged names the keys that differ (stale stages would be silently reused)."""
    run_dir = (Path(cfg.run.dir) / cfg.run.name).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = config_lib.to_dict(cfg)
    text = json.dumps(resolved, indent=1)
    previous = run_dir / "config.json"
    if previous.exists() and any(p.name != "config.json" for p in run_dir.iterdir()):
        diff = changed_settings(json.loads(previous.read_text()), json.loads(text))  # same JSON types on both sides
        if diff:
            raise ConfigChanged(f"{run_dir} holds a run with other settings ({', '.join(diff[:6])}); resuming would "
                                f"reuse its finished stages. Use another run.name, or delete the folder to start over.")
    previous.write_text(text)
    print(f"{label} run {run_dir}\n{json.dumps(resolved)}", flush=True)
    return run_dir


def init_ray() -> None:
    """Join the cluster in RAY_ADDRESS (`ray job submit` sets it) or start a local one."""
    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init()
    else:
        ray.init(include_dashboard=False, log_to_driver=False)
