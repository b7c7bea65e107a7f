"""A Ray Data graph's rows streamed into parquet part files as they arrive, resumable at
image granularity.

The driver pulls the graph's output block by block (`Dataset.iter_batches`), so it holds one
block and the images whose rows have not all arrived yet, never the whole output. Ray Data may
split an image's rows across blocks (a batch boundary of a later stage falls where it falls),
so rows wait here until their image is whole (`expected(row)`: how many rows its image has).
The images a block completes are finished together (`finish`, e.g. top-k per image, where
each image's K rows are together) and written as one part: a temporary dot-name, then an
atomic rename, so a kill never leaves half a part and every part holds whole images only.

A re-run over the same folder reads the image ids of the parts already written; the caller
feeds only the rest into the graph (`run` does both). Rows of an image already written, or a
repeated (image_id, sample), are dropped and counted, so the parts never hold a duplicate. The
key columns are `key` (the image) and `sub` (a row within it): (image_id, sample) for SVP's
and the VL-GenRM samples, (image_id, row) for rows numbered across the whole input. The folder's
`_source.json` names what produced it (e.g. the iteration and its adapter's weights): a folder
left by other inputs is emptied first. `_attempts.jsonl` gets one line per run over it.
`read` gives the written rows back in one deterministic order, whatever order the graph
produced them in.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

KEY, SUB = "image_id", "sample"


class PartSink:
    def __init__(self, folder: Path, source: dict[str, Any], key: str = KEY, sub: str = SUB) -> None:
        self.folder = Path(folder)
        self.key, self.sub = key, sub
        source = json.loads(json.dumps(source))  # as it reads back (tuples are lists in JSON)
        manifest = self.folder / "_source.json"
        if manifest.exists() and _read_json(manifest) != source:
            print(f"[sink] {self.folder} holds rows of other inputs; starting it over", flush=True)
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if not manifest.exists():
            _atomic_write(manifest, json.dumps(source, indent=1).encode())
        for tmp in self.folder.glob(".*.tmp"):  # a part whose write a kill cut short
            tmp.unlink()
        self.done: set[int] = set()
        for part in self.parts():
            self.done.update(int(i) for i in _read_part(part, [key]).column(key).to_pylist())
        self.pending: dict[int, dict[int, dict]] = {}
        self.stats = {
            "images_before": len(self.done),
            "images_written": 0,
            "rows_written": 0,
            "parts_written": 0,
            "duplicates_dropped": 0,
        }

    def parts(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet"))

    def run(
        self,
        rows: list[dict],
        graph: Callable[[list[dict]], Any],
        expected: Callable[[dict], int],
        finish: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
        label: str = "sample",
    ) -> dict[str, Any]:
        """The input rows whose image is not written yet through `graph` (rows -> a Ray Data
        Dataset), its output consumed block by block; the run's counts (nothing runs when every
        image is written already)."""
        todo = [r for r in rows if int(r[self.key]) not in self.done]
        images = len({int(r[self.key]) for r in todo})
        print(f"[{label}] {len(self.done)} image(s) written earlier, {images} to go", flush=True)
        stats = dict(self.stats)
        if todo:
            batches = graph(todo).iter_batches(batch_size=None, batch_format="pandas")
            stats = self.consume(batches, expected, finish)
        print(f"[{label}] {json.dumps(stats)}", flush=True)
        return stats

    def consume(
        self,
        batches: Iterable[pd.DataFrame],
        expected: Callable[[dict], int],
        finish: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    ) -> dict[str, Any]:
        """Write every image of `batches` once it is complete; the run's counts. Raises when the
        stream ends with an image still missing rows (rows were lost upstream)."""
        t = time.time()
        for batch in batches:
            self.add(batch, expected, finish)
        if self.pending:
            some = sorted(self.pending)[:5]
            raise RuntimeError(
                f"the graph ended with {len(self.pending)} image(s) missing rows, e.g. "
                f"{[(i, sorted(self.pending[i])) for i in some]}"
            )
        self.stats["seconds"] = round(time.time() - t, 3)
        with open(self.folder / "_attempts.jsonl", "a") as f:
            f.write(json.dumps(self.stats) + "\n")
        return dict(self.stats)

    def add(
        self,
        batch: pd.DataFrame,
        expected: Callable[[dict], int],
        finish: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    ) -> None:
        complete = []
        for row in batch.to_dict("records"):
            image, sample = int(row[self.key]), int(row[self.sub])
            rows = self.pending.setdefault(image, {}) if image not in self.done else None
            if rows is None or sample in rows:
                self.stats["duplicates_dropped"] += 1
                continue
            rows[sample] = row
            if len(rows) == expected(row):
                complete.append(image)
        if not complete:
            return
        df = pd.DataFrame([r for i in complete for _, r in sorted(self.pending.pop(i).items())])
        self.done.update(complete)
        self.write(finish(df) if finish else df)
        self.stats["images_written"] += len(complete)

    def write(self, df: pd.DataFrame) -> None:
        name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:6]}.parquet"  # sorts in write order
        tmp = self.folder / f".{name}.tmp"
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp)
        os.replace(tmp, self.folder / name)
        self.stats["rows_written"] += len(df)
        self.stats["parts_written"] += 1

    def frames(self, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """The written rows, one part at a time (each image once, in write order)."""
        for part in self.parts():
            yield _read_part(part, columns).to_pandas()

    def read(self, order: Iterable[int] = (), columns: list[str] | None = None) -> pd.DataFrame:
        """Every written row in one frame, in a deterministic order whatever order the graph
        produced them in: the images in `order` first (then any other, by id), each image's rows
        by `sub`."""
        frames = list(self.frames(columns))
        if not frames:
            return pd.DataFrame(columns=columns)
        df = pd.concat(frames, ignore_index=True)
        pos = {int(i): n for n, i in enumerate(order)}
        rank = [pos.get(int(i), len(pos)) for i in df[self.key]]
        df = df.assign(_rank=rank).sort_values(["_rank", self.key, self.sub], kind="stable")
        return df.drop(columns="_rank").reset_index(drop=True)

    def compact(self, out: Path, subset: Path | None = None, where: str = "", parts_per_group: int = 64) -> int:
        """Every part, in write order, into one parquet file `out` (and the rows whose boolean
        column `where` is true into `subset`), `parts_per_group` parts per row group (the
        writer holds every row group's metadata until it closes); the number of rows."""
        writers: dict[Path, pq.ParquetWriter] = {}
        schema = None
        n = 0
        group: list[pa.Table] = []

        def flush() -> None:
            table = pa.concat_tables(group)
            group.clear()
            for path, t in ((out, table), (subset, table.filter(table.column(where)) if subset else None)):
                if path is not None:
                    if path not in writers:
                        writers[path] = pq.ParquetWriter(_tmp(path), schema)
                    writers[path].write_table(t)

        try:
            for part in self.parts():
                table = _read_part(part).replace_schema_metadata(None)
                schema = schema or table.schema
                group.append(table.select(schema.names).cast(schema))
                n += table.num_rows
                if len(group) >= parts_per_group:
                    flush()
            if group:
                flush()
        finally:
            for w in writers.values():
                w.close()
        for path in (out, subset):
            if path is not None:
                if path not in writers:  # no part at all: an empty file keeps every reader working
                    pq.write_table(pa.table({self.key: pa.array([], pa.int64())}), _tmp(path))
                os.replace(_tmp(path), path)
        return n


def _read_part(part: Path, columns: list[str] | None = None) -> pa.Table:
    # ParquetFile, not pq.read_table: over 625 parts the dataset reader grew the driver by 72 MiB, this by 24
    with pq.ParquetFile(part) as f:
        return f.read(columns=columns)


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def _atomic_write(path: Path, data: bytes) -> None:
    _tmp(path).write_bytes(data)
    os.replace(_tmp(path), path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None
