import base64
import json
from pathlib import Path

import pytest

from groundloop.data.coco import DataError
from groundloop.data.vlrewardbench import category_of, load_vlrewardbench

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "vlrewardbench"

# id -> (category, chosen index in `response`, image size, image colour), as make_fixture.py wrote them
EXPECTED = {
    "wildvision-battle-1": ("general", 0, (12, 8), (200, 30, 30)),
    "LRVInstruction-000000000001": ("general", 0, (9, 14), (30, 200, 30)),
    "hallucination_pair-1": ("hallucination", 1, (16, 5), (30, 30, 200)),
    "RLAIF-V-1": ("hallucination", 0, (7, 7), (200, 200, 30)),
    "mathverse_1": ("reasoning", 0, (10, 6), (200, 30, 200)),
    "mmmu_pro_test_Math_1": ("reasoning", 1, (6, 11), (30, 200, 200)),
}


def _rows():
    return [json.loads(line) for line in (FIXTURE / "bench.jsonl").read_text().splitlines()]


def _write_rows(tmp_path, rows):
    path = tmp_path / "bench.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("name", ["bench.jsonl", "bench.parquet"])
def test_fixture_loads_with_categories_order_and_images(name):
    pairs = load_vlrewardbench(FIXTURE / name)
    assert [p.id for p in pairs] == list(EXPECTED)
    for p in pairs:
        category, best, size, colour = EXPECTED[p.id]
        assert p.category == category
        assert p.prompt == f"What is shown in image {p.id}?"
        labels = ["A", "B"]
        assert (p.chosen, p.rejected) == (f"{p.id} answer {labels[best]}", f"{p.id} answer {labels[1 - best]}")
        assert p.image.mode == "RGB" and p.image.size == size
        assert p.image.getpixel((0, 0)) == colour


def test_ranking_1_0_makes_the_second_response_chosen():
    pair = next(p for p in load_vlrewardbench(FIXTURE / "bench.parquet") if p.id == "hallucination_pair-1")
    assert pair.chosen == "hallucination_pair-1 answer B" and pair.rejected == "hallucination_pair-1 answer A"


@pytest.mark.parametrize(
    ("row_id", "category"),
    [
        # id shapes copied from the authors' data.jsonl
        ("wildvision-battle-5808", "general"),
        ("LRVInstruction-000000007746", "general"),
        ("jailbreak-typo-Illegal_Activitiy-62", "general"),
        ("hallucination_pair-1942", "hallucination"),
        ("RLAIF-V-14", "hallucination"),
        ("RLHF-V-3", "hallucination"),
        ("mathverse_1649_1", "reasoning"),
        ("mmmu_pro_validation_Pharmacy_23", "reasoning"),
    ],
)
def test_category_follows_the_id_prefix_not_query_source(row_id, category):
    assert category_of(row_id) == category


def test_image_as_base64_dict_and_paths_under_image_root(tmp_path):
    rows = _rows()[:2]
    png = (FIXTURE / "images" / "wildvision-battle-1.png").read_bytes()
    rows[0]["image"] = {"bytes": base64.b64encode(png).decode()}
    rows[1]["image"] = {"bytes": None, "path": "images/LRVInstruction-000000000001.png"}
    pairs = load_vlrewardbench(_write_rows(tmp_path, rows), image_root=FIXTURE)
    assert [p.image.size for p in pairs] == [(12, 8), (9, 14)]


def test_authors_image_path_field_is_accepted(tmp_path):
    row = _rows()[0]
    row["image_path"] = row.pop("image")
    (pair,) = load_vlrewardbench(_write_rows(tmp_path, [row]), image_root=FIXTURE)
    assert pair.image.size == (12, 8)


def test_explicit_category_must_be_known(tmp_path):
    row = _rows()[0]
    row["category"] = "safety"
    with pytest.raises(DataError, match=r"'wildvision-battle-1'.*'category'.*general, hallucination, reasoning"):
        load_vlrewardbench(_write_rows(tmp_path, [row]), image_root=FIXTURE)


def _drop_query(r):
    del r["query"]


def _three_responses(r):
    r["response"] = ["a", "b", "c"]


def _tie(r):
    r["human_ranking"] = [0, 0]


def _short_ranking(r):
    r["human_ranking"] = [0]


def _garbage_image(r):
    r["image"] = {"bytes": base64.b64encode(b"not a png").decode()}


def _missing_image_file(r):
    r["image"] = "images/nowhere.png"


def _no_image(r):
    del r["image"]


@pytest.mark.parametrize(
    ("break_row", "field"),
    [
        (_drop_query, "query"),
        (_three_responses, "response"),
        (_tie, "human_ranking"),
        (_short_ranking, "human_ranking"),
        (_garbage_image, "image"),
        (_missing_image_file, "image"),
        (_no_image, "image"),
    ],
)
def test_malformed_row_names_row_and_field(tmp_path, break_row, field):
    rows = _rows()
    break_row(rows[3])
    with pytest.raises(DataError, match=rf"row 'RLAIF-V-1': field '{field}'"):
        load_vlrewardbench(_write_rows(tmp_path, rows), image_root=FIXTURE)


def test_tie_is_called_a_tie(tmp_path):
    rows = _rows()
    _tie(rows[0])
    with pytest.raises(DataError, match="tie"):
        load_vlrewardbench(_write_rows(tmp_path, rows), image_root=FIXTURE)


@pytest.mark.parametrize("name", ["bench.csv", "missing.jsonl"])
def test_unsupported_or_missing_file(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".csv"):
        path.write_text("id\n")
    with pytest.raises(DataError, match=name):
        load_vlrewardbench(path)
