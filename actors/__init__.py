"""Thin Ray Data actors: load a model once in __init__, call one groundloop function per batch.

Undecorated on purpose: pipelines/ choose resources (`map_batches(..., num_cpus=...,
compute=ActorPoolStrategy(size=...))`) from the config.
"""

from __future__ import annotations

import pandas as pd


def require(batch: pd.DataFrame, columns: list[str], actor: str) -> None:
    """Fail with the missing column's name when a batch breaks the row contract."""
    missing = [c for c in columns if c not in batch.columns]
    if missing:
        raise KeyError(f"{actor}: batch is missing column(s) {missing}; has {list(batch.columns)}")
