"""One Ray Data actor pool as a small descriptor (as ray.llm's batch stages are): a callable
class from actors/ with its constructor keywords and the pool it runs in; `apply(ds)` adds
it to a dataset's graph."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ray
from ray.data import ActorPoolStrategy

from pipelines.common.config import Pool


@dataclass(frozen=True)
class ActorStage:
    """`cls(**kwargs)` per actor of `pool`, called on pandas batches of pool.batch_size rows;
    with `group_by`, called once per group of rows sharing that column's value instead."""

    cls: type
    kwargs: dict[str, Any] = field(default_factory=dict)
    pool: Pool = field(default_factory=Pool)
    group_by: str | None = None

    def apply(self, ds: ray.data.Dataset) -> ray.data.Dataset:
        common: dict[str, Any] = {
            "fn_constructor_kwargs": self.kwargs,
            "batch_format": "pandas",
            "compute": ActorPoolStrategy(size=self.pool.actors),
            "num_cpus": self.pool.cpus,
            "num_gpus": self.pool.gpus or None,
        }
        if self.group_by is not None:
            return ds.groupby(self.group_by).map_groups(self.cls, **common)
        return ds.map_batches(self.cls, batch_size=self.pool.batch_size, **common)
