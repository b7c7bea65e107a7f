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


def start_run(cfg: Any, label: str) -> Path:
    """run.dir/run.name as an absolute path (Ray Train workers run in another folder, so a
    relative adapter path would not be found there), created, with the resolved config in it."""
    run_dir = (Path(cfg.run.dir) / cfg.run.name).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = config_lib.to_dict(cfg)
    (run_dir / "config.json").write_text(json.dumps(resolved, indent=1))
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
