"""pipelines.common.sink: whole images per part, resume from the parts, no duplicates, bounded buffer."""

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipelines.common.sink import PartSink

K = 3


def rows(image_ids, k=K):
    return [
        {"image_id": i, "sample": j, "image_priors": ["p"] * k, "v": 10 * i + j} for i in image_ids for j in range(k)
    ]


def blocks(flat, size):
    """The rows cut into blocks of `size` rows, so an image's rows straddle block boundaries."""
    return [pd.DataFrame(flat[i : i + size]) for i in range(0, len(flat), size)]


def count(row):
    return len(row["image_priors"])


def top1(df):
    return df.assign(selected=df.groupby("image_id")["v"].transform("max") == df["v"]).drop(columns="image_priors")


def read(folder):
    return pd.concat([pq.read_table(p).to_pandas() for p in sorted(folder.glob("part-*.parquet"))])


def test_images_split_across_blocks_are_written_whole_and_finished_together(tmp_path):
    sink = PartSink(tmp_path / "p", {"it": 1})
    stats = sink.consume(blocks(rows(range(5)), 4), count, top1)
    df = read(tmp_path / "p")
    assert len(df) == 5 * K and not df.duplicated(["image_id", "sample"]).any()
    for part in sink.parts():  # each part holds only whole images
        assert (pq.read_table(part).to_pandas().groupby("image_id").size() == K).all()
    assert df.groupby("image_id")["selected"].sum().tolist() == [1] * 5
    assert df[df["selected"]]["sample"].tolist() == [K - 1] * 5
    assert stats["images_written"] == 5 and stats["duplicates_dropped"] == 0 and "image_priors" not in df


def test_a_killed_run_resumes_from_its_parts_and_never_writes_a_row_twice(tmp_path):
    flat = rows(range(10))
    bs = blocks(flat, 4)

    def killed(after):
        for i, b in enumerate(bs):
            if i == after:
                raise KeyboardInterrupt  # the driver dies here: what is pending is lost
            yield b

    sink = PartSink(tmp_path / "p", {"it": 1})
    with pytest.raises(KeyboardInterrupt):
        sink.consume(killed(4), count)
    written = set(read(tmp_path / "p")["image_id"])
    assert written == {0, 1, 2, 3, 4}  # 16 rows in, image 5 was incomplete
    (tmp_path / "p" / ".part-x.parquet.tmp").write_bytes(b"half")  # a write the kill cut short

    again = PartSink(tmp_path / "p", {"it": 1})
    assert again.done == written and not list((tmp_path / "p").glob(".*.tmp"))
    todo = [r for r in flat if r["image_id"] not in again.done]
    # the graph may hand back rows of images written already (here: all of them again): dropped
    stats = again.consume(blocks(todo, 5) + blocks(flat[:6], 6), count)
    df = read(tmp_path / "p")
    assert len(df) == 10 * K and not df.duplicated(["image_id", "sample"]).any()
    assert stats["images_before"] == 5 and stats["images_written"] == 5 and stats["duplicates_dropped"] == 6
    assert (tmp_path / "p" / "_attempts.jsonl").read_text().count("\n") == 1


def test_lost_rows_fail_the_run_and_other_inputs_start_the_folder_over(tmp_path):
    sink = PartSink(tmp_path / "p", {"adapter": "a"})
    with pytest.raises(RuntimeError, match="missing rows"):
        sink.consume(blocks(rows([1, 2])[:-1], 2), count)
    assert sink.done == {1}
    assert PartSink(tmp_path / "p", {"adapter": "a"}).done == {1}
    assert PartSink(tmp_path / "p", {"adapter": "b"}).done == set()  # sampled with another adapter


def test_compact_streams_parts_into_one_file_and_the_selected_subset(tmp_path):
    sink = PartSink(tmp_path / "p", {})
    sink.consume(blocks(rows(range(4)), 5), count, top1)
    n = sink.compact(tmp_path / "scored.parquet", tmp_path / "selected.parquet", where="selected")
    scored, selected = pd.read_parquet(tmp_path / "scored.parquet"), pd.read_parquet(tmp_path / "selected.parquet")
    assert n == len(scored) == 4 * K and selected["image_id"].tolist() == [0, 1, 2, 3]
    assert scored.sort_values(["image_id", "sample"])["v"].tolist() == [10 * i + j for i in range(4) for j in range(K)]
    empty = PartSink(tmp_path / "q", {})
    assert empty.compact(tmp_path / "e.parquet", tmp_path / "es.parquet", where="selected") == 0
    assert len(pd.read_parquet(tmp_path / "e.parquet")) == 0


def test_the_driver_buffer_holds_only_incomplete_images(tmp_path):
    sink = PartSink(tmp_path / "p", {})
    peak = 0
    for b in blocks(rows(range(200)), 7):
        sink.add(b, count)
        peak = max(peak, len(sink.pending))
    assert peak <= 2 and not sink.pending and len(sink.done) == 200
