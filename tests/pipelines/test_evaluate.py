"""`pipelines/evaluate.py` end to end on a small ShapesWorld split with the shipped models."""

import json
import runpy
import sys
from pathlib import Path

import pytest

from groundloop.worlds import shapes as world

ROOT = Path(__file__).resolve().parents[2]


def _run(argv):
    old = sys.argv
    sys.argv = ["evaluate.py", *argv]
    try:
        return runpy.run_path(str(ROOT / "pipelines" / "evaluate.py"), run_name="not_main")["main"]()
    finally:
        sys.argv = old


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    d = tmp_path_factory.mktemp("shapes") / "test"
    world.generate(d, "test", 6, seed=5)
    return d


def test_report_has_every_metric_and_a_captions_file(split, tmp_path):
    out = tmp_path / "r.json"
    report = _run(["--data", str(split), "--out", str(out), "--grounded", "--max-new-tokens", "80"])
    saved = json.loads(out.read_text())
    assert saved["n_images"] == 6 and saved["n_errors"] == 0
    for k in ("chair_s", "chair_i", "recall", "bleu4", "cider"):
        assert 0.0 <= saved[k] <= (10.0 if k == "cider" else 1.0)
    for kind in ("random", "popular", "adversarial"):
        assert {"accuracy", "f1"} <= set(saved["pope"][kind])
    assert saved["recall"] > 0.3  # the shipped VLM sees something
    rows = [json.loads(x) for x in (tmp_path / "r.captions.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(r["caption"] and "guided_caption" in r for r in rows)
    assert report["grounded"]["n_captions"] == 6


def test_a_corrupt_image_is_reported_and_the_rest_evaluated(split, tmp_path):
    broken = tmp_path / "broken"
    (broken / "images").mkdir(parents=True)
    for p in split.iterdir():
        if p.is_file():
            (broken / p.name).write_bytes(p.read_bytes())
    for p in (split / "images").iterdir():
        (broken / "images" / p.name).write_bytes(p.read_bytes())
    (broken / "images" / "test_000002.png").write_bytes(b"\x89PNG garbage")
    (broken / "images" / "test_000004.png").unlink()
    out = tmp_path / "r.json"
    _run(["--data", str(broken), "--out", str(out), "--no-pope", "--max-new-tokens", "40"])
    report = json.loads(out.read_text())
    assert report["n_images"] == 4 and report["n_errors"] == 2
    errors = [json.loads(x) for x in (tmp_path / "r.errors.jsonl").read_text().splitlines()]
    assert {Path(e["path"]).name for e in errors} == {"test_000002.png", "test_000004.png"}
    assert all(e["error"].startswith("unreadable image:") for e in errors)


def test_bad_dataset_exits_with_a_clear_message(tmp_path, capsys):
    (tmp_path / "instances.json").write_text('{"images": [{"id": 1}], "annotations": []}')
    with pytest.raises(SystemExit) as exit_:
        _run(["--data", str(tmp_path), "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and "file_name" in err[0]
