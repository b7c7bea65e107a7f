"""Thin Ray Data actors: load a model once in __init__, call one groundloop function per batch.

Undecorated on purpose: pipelines/ choose resources (`map_batches(..., num_cpus=...,
compute=ActorPoolStrategy(size=...))`) from the config.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd


def require(batch: pd.DataFrame, columns: list[str], actor: str) -> None:
    """Fail with the missing column's name when a batch breaks the row contract."""
    missing = [c for c in columns if c not in batch.columns]
    if missing:
        raise KeyError(f"{actor}: batch is missing column(s) {missing}; has {list(batch.columns)}")


def isolated(
    call: Callable[[list[int]], Sequence[Any]], rows: list[int], errors: list[str], stage: str
) -> dict[int, Any]:
    """`call(rows)`'s results by row; when the batch fails, each row is tried alone, so one bad
    row fails alone: its error (errors[i], "<stage> failed: ...") goes with it and the others are
    answered."""
    if not rows:
        return {}
    try:
        return dict(zip(rows, call(rows), strict=True))
    except Exception:  # noqa: BLE001 - a row's failure is recorded on the row, below
        out: dict[int, Any] = {}
        for i in rows:
            try:
                out[i] = call([i])[0]
            except Exception as e:  # noqa: BLE001
                errors[i] = f"{stage} failed: {type(e).__name__}: {e}"[:500]
        return out
