"""What every pipeline entry point does first: parse `--config` + dotted overrides into its
frozen config, create the run folder with the resolved config in it, and join or start Ray."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from groundloop import config as config_lib

T = TypeVar("T")


class UsageError(ValueError):
    """A command line that names something missing or out of range; printed as one line."""


def fail(message: str) -> NoReturn:
    """The one way an entry point refuses its input: `error: ...` on stderr, exit status 2."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def _user_errors() -> tuple[type[BaseException], ...]:
    import yaml

    from groundloop.data.coco import DataError
    from groundloop.images import ImageError
    from pipelines.common.stages import RunStateError

    return (
        config_lib.ConfigError,
        ConfigChanged,
        UsageError,
        DataError,
        ImageError,
        FileNotFoundError,
        yaml.YAMLError,
        RunStateError,
    )


def install_error_hook() -> None:
    """Uncaught user errors (a bad config value, a missing file, a changed config on resume)
    end the process as one `error: ...` line with status 2 instead of a traceback; anything
    else keeps Python's traceback."""
    previous = sys.excepthook
    if getattr(previous, "groundloop", False):
        return

    def hook(kind: type[BaseException], error: BaseException, tb: Any) -> None:
        if isinstance(error, _user_errors()):
            print(f"error: {' '.join(str(error).split())}", file=sys.stderr, flush=True)
            sys.exit(2)
        previous(kind, error, tb)

    hook.groundloop = True  # type: ignore[attr-defined]
    sys.excepthook = hook


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (`error: ...`, status 2); parsing the process's own
    command line (args=None, as a script's main does) also installs the error hook."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        if "prog" not in kwargs and spec is not None and spec.name.endswith(".__main__"):
            kwargs["prog"] = f"python -m {spec.name.removesuffix('.__main__')}"  # not "__main__.py"
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see --help)")

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        if args is None:
            install_error_hook()
        return super().parse_args(args, namespace)


def parser(doc: str | None, recipe: str, example: str) -> ArgumentParser:
    p = ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help=f"YAML recipe, e.g. {recipe}")
    p.add_argument("overrides", nargs="*", help=f"dotted overrides, e.g. {example}")
    return p


# Config fields that name an input folder or file, and ones that name a model (groundloop.models spec)
PATH_FIELDS = ("path", "eval_path", "bench_path", "responses_from")
MODEL_FIELDS = ("vlm", "detector", "clip", "value", "reward_model", "vision_init", "adapter")


def check_path(path: str | Path, key: str) -> None:
    if not Path(path).expanduser().exists():
        raise UsageError(f"{key}: {path} does not exist")


def check_model(spec: str, key: str) -> None:
    """A model spec that can be loaded: a shipped ShapesWorld model, a local folder, or a hub
    id ("org/name") in the local cache or on a reachable hub. Checked before anything runs."""
    from groundloop.models import SHAPESWORLD_PREFIX, resolve

    if spec.startswith(SHAPESWORLD_PREFIX):
        try:
            resolve(spec)
        except FileNotFoundError as e:
            raise UsageError(f"{key}: {e}") from None
        return
    if Path(spec).expanduser().exists():
        return
    if spec.startswith((".", "/", "~")) or spec.count("/") != 1:
        raise UsageError(f"{key}: no model folder {spec}")
    import huggingface_hub as hub

    if any(hub.try_to_load_from_cache(spec, f) for f in ("config.json", "adapter_config.json")):
        return
    try:
        hub.model_info(spec, timeout=10)
    except hub.errors.RepositoryNotFoundError:
        raise UsageError(f"{key}: {spec} is neither a local folder nor a model on the hub") from None
    except (hub.errors.GatedRepoError, hub.errors.HfHubHTTPError):
        return  # it exists; loading will say what access it needs
    except Exception as e:  # noqa: BLE001 - offline, DNS, timeouts: it cannot be loaded from here
        raise UsageError(
            f"{key}: {spec} is not a local folder, not in the local hub cache, and the hub "
            f"cannot be reached ({type(e).__name__})"
        ) from None


def check_inputs(cfg: Any, prefix: str = "") -> None:
    """Every data path of a config exists and every model spec resolves (empty = unused)."""
    for f in dataclasses.fields(cfg):
        value, key = getattr(cfg, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            check_inputs(value, f"{key}.")
        elif isinstance(value, str) and value:
            if f.name in PATH_FIELDS:
                check_path(value, key)
            elif f.name in MODEL_FIELDS:
                check_model(value, key)


def load(cls: type[T], args: argparse.Namespace) -> T:
    """The config, its ranges and its inputs checked, or exit (status 2) with one line naming
    the bad key, value or path."""
    try:
        cfg = config_lib.load(cls, args.config, args.overrides)
        check_inputs(cfg)
    except ValueError as e:  # ConfigError, UsageError, and a section's own __post_init__ checks
        fail(str(e))
    return cfg


# Settings a resumed run may change: where and how wide things run, not what is computed.
RESUME_SAFE = (
    "resources.",
    "train.num_workers",
    "train.cpus_per_worker",
    "train.torch_threads",
    "svp.compare_ablations",
    "svp.iterations",
    "self_train.rounds",
    "serving.app_name",
    "serving.port",
    "serving.replica_cpus",
    "serving.torch_threads",
    "serving.keep_running",
)  # more iterations (rounds) extend a run


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
    return [
        f"{k}: {a.get(k)!r} -> {b.get(k)!r}"
        for k in sorted(a.keys() | b.keys())
        if a.get(k) != b.get(k) and not k.startswith(RESUME_SAFE)
    ]


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
        from pipelines.common.stages import read_json

        diff = changed_settings(read_json(previous), json.loads(text))  # same JSON types on both sides
        if diff:
            raise ConfigChanged(
                f"{run_dir} holds a run with other settings ({', '.join(diff[:6])}); resuming would "
                f"reuse its finished stages. Use another run.name, or delete the folder to start over."
            )
    previous.write_text(text)
    print(f"{label} run {run_dir}\n{json.dumps(resolved)}", flush=True)
    return run_dir


def init_ray() -> None:
    """Join the cluster in RAY_ADDRESS (`ray job submit` sets it) or start a local one."""
    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init()
    else:
        ray.init(include_dashboard=False, log_to_driver=False)
