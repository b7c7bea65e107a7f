"""Run state that cannot lie: a finished stage is skipped only while its outputs check out; a
damaged output is named and its stage (and every later one) redone; damaged bookkeeping is
one clear error."""

import json

import pandas as pd
import pytest

from pipelines.common.stages import RunStateError, Stages, write_parquet


def stage_writing(path, rows, calls):
    def fn():
        calls.append(path.name)
        write_parquet(pd.DataFrame({"x": range(rows)}), path)

    return fn


def test_finished_stages_are_skipped_and_a_damaged_output_is_redone_with_what_follows(tmp_path, capsys):
    calls: list[str] = []

    def run_all():
        stages = Stages(tmp_path)
        stages.run("a", stage_writing(tmp_path / "a.parquet", 5, calls), ["a.parquet"])
        stages.run("b", stage_writing(tmp_path / "b.parquet", 3, calls), ["b.parquet"])

    run_all()
    run_all()
    assert calls == ["a.parquet", "b.parquet"]  # the second run skipped both
    data = (tmp_path / "a.parquet").read_bytes()
    (tmp_path / "a.parquet").write_bytes(data[: len(data) // 2])  # truncated, as by a full disk or a kill
    run_all()
    assert calls[2:] == ["a.parquet", "b.parquet"]  # a redone, and b, which consumed it
    out = capsys.readouterr().out
    assert "[redo] a: " in out and "a.parquet is damaged" in out
    (tmp_path / "b.parquet").unlink()
    run_all()
    assert calls[4:] == ["b.parquet"] and "b.parquet is missing" in capsys.readouterr().out


def test_a_parquet_with_other_rows_than_recorded_is_redone(tmp_path):
    calls: list[str] = []
    Stages(tmp_path).run("a", stage_writing(tmp_path / "a.parquet", 5, calls), ["a.parquet"])
    pd.DataFrame({"x": range(2)}).to_parquet(tmp_path / "a.parquet")
    Stages(tmp_path).run("a", stage_writing(tmp_path / "a.parquet", 5, calls), ["a.parquet"])
    assert calls == ["a.parquet", "a.parquet"]


def test_a_truncated_adapter_is_redone(tmp_path):
    from groundloop.finetune import add_lora
    from groundloop.models import load_vlm

    calls = []

    def train():
        calls.append("train")
        add_lora(load_vlm("shapesworld/vlm")[0], 2, 4, 0.0).save_pretrained(tmp_path / "adapter")

    Stages(tmp_path).run("train", train, ["adapter"])
    weights = tmp_path / "adapter" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    Stages(tmp_path).run("train", train, ["adapter"])
    assert calls == ["train", "train"]


def test_a_stage_that_writes_a_broken_output_fails_and_is_not_recorded(tmp_path):
    def broken():
        (tmp_path / "a.parquet").write_bytes(b"PAR1 not really")

    with pytest.raises(RunStateError, match="stage a wrote an unreadable .*a.parquet"):
        Stages(tmp_path).run("a", broken, ["a.parquet"])
    assert not Stages(tmp_path).done("a")


@pytest.mark.parametrize("text", ["", '{"done": ', "[1, 2]"])
def test_damaged_state_is_one_error_naming_the_file(tmp_path, text):
    (tmp_path / "state.json").write_text(text)
    with pytest.raises(RunStateError, match="state.json is damaged"):
        Stages(tmp_path)


def test_a_damaged_config_on_resume_is_one_line_and_exit_2(tmp_path):
    import subprocess
    import sys

    run = tmp_path / "svp_x"
    run.mkdir()
    (run / "config.json").write_text('{"run": ')
    (run / "state.json").write_text(json.dumps({"done": {}}))
    p = subprocess.run(
        [
            sys.executable,
            "pipelines/svp.py",
            f"run.dir={tmp_path}",
            "run.name=svp_x",
            "data.path=tests/fixtures/photos",
            "data.eval_path=tests/fixtures/photos",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "config.json is damaged" in lines[0]
