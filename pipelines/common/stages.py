"""Resumable runs whose state cannot lie: which stages finished, and what each one wrote.

`Stages.run(name, fn, outputs)` runs a stage unless state.json records it finished and every
output it recorded still checks out: a parquet file readable with the row count it had, an
adapter folder whose config parses and whose weights load, a JSON file that parses. A damaged
or missing output is named and its stage run again; so is everything after it, since later
stages consumed it. The outputs are checked right after the stage, before it is recorded, so a
stage that wrote a broken file fails instead of finishing. `write_parquet` / `write_json` write
to a temporary name and rename, so a killed write never leaves a half file under the real name.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


class RunStateError(ValueError):
    """A run folder's own bookkeeping is unreadable; the message names the file."""


def write_json(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def write_parquet(df: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    df.to_parquet(tmp)
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """The JSON in `path`; a damaged file is a RunStateError naming it."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RunStateError(
            f"{path} is damaged ({type(e).__name__}: {e}); delete it, or the run folder, to run its stages again"
        ) from e


def fingerprint(path: Path) -> dict[str, Any]:
    """What a finished output is checked against later; raises when the output is unreadable."""
    if path.is_dir():
        if (path / "adapter_config.json").exists():
            json.loads((path / "adapter_config.json").read_text())
            from safetensors import safe_open

            with safe_open(str(path / "adapter_model.safetensors"), "pt") as f:
                n = len(list(f.keys()))
            if n == 0:
                raise ValueError("the adapter holds no weights")
            return {"kind": "adapter", "tensors": n}
        return {"kind": "folder", "files": sorted(p.name for p in path.iterdir())}
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return {"kind": "parquet", "rows": table.num_rows}
    if path.suffix == ".json":
        json.loads(path.read_text())
        return {"kind": "json"}
    return {"kind": "file", "bytes": path.stat().st_size}


def problem(path: Path, recorded: dict[str, Any]) -> str | None:
    """Why a recorded output no longer checks out, or None when it does."""
    if not path.exists():
        return f"{path} is missing"
    try:
        now = fingerprint(path)
    except Exception as e:  # noqa: BLE001 - any failure to read it means it is damaged
        return f"{path} is damaged ({type(e).__name__}: {e})"
    if now != recorded:
        return f"{path} changed since its stage finished ({recorded} -> {now})"
    return None


class Stages:
    """The finished stages of a run folder (state.json) and their checked outputs."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "state.json"
        self.state: dict[str, Any] = read_json(self.path) if self.path.exists() else {"done": {}}
        if not isinstance(self.state, dict) or not isinstance(self.state.get("done"), dict):
            raise RunStateError(f"{self.path} is damaged (no 'done' mapping); delete it to run every stage again")
        self._redoing = False  # once a stage is redone, the stages after it are redone too

    def done(self, name: str) -> bool:
        return name in self.state["done"]

    def run(self, name: str, fn: Callable[[], Any], outputs: Iterable[str | Path] = ()) -> None:
        """Run stage `name` (`fn`) unless it finished with outputs that still check out;
        `outputs` are paths relative to the run folder (or absolute)."""
        record = self.state["done"].get(name)
        if record is not None and not self._redoing:
            issues = [p for out, fp in _outputs(record).items() if (p := problem(self._path(out), fp))]
            if not issues:
                print(f"[skip] {name} (finished earlier)", flush=True)
                return
            print(f"[redo] {name}: {'; '.join(issues)}", flush=True)
            self._redoing = True
        elif record is not None:
            print(f"[redo] {name}: an earlier stage was redone", flush=True)
        print(f"[stage] {name}", flush=True)
        t = time.time()
        fn()
        checked = {}
        for out in outputs:
            path = self._path(out)
            try:
                checked[str(out)] = fingerprint(path)
            except Exception as e:  # noqa: BLE001
                raise RunStateError(f"stage {name} wrote an unreadable {path} ({type(e).__name__}: {e})") from e
        self.finish(name, time.time() - t, checked)

    def finish(self, name: str, seconds: float, outputs: dict[str, Any] | None = None) -> None:
        self.state["done"][name] = {"seconds": seconds, "outputs": outputs or {}}
        write_json(self.state, self.path)  # atomic: an interrupted write never corrupts the state

    def seconds(self) -> dict[str, float]:
        return {k: (v["seconds"] if isinstance(v, dict) else float(v)) for k, v in self.state["done"].items()}

    def _path(self, out: str | Path) -> Path:
        p = Path(out)
        return p if p.is_absolute() else self.run_dir / p


def _outputs(record: Any) -> dict[str, Any]:
    """A record's outputs (records of runs before outputs were recorded hold only seconds)."""
    return record.get("outputs", {}) if isinstance(record, dict) else {}
