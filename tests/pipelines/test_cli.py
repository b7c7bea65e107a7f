"""Entry points refuse bad input as one line `error: ...` with exit status 2, before anything
runs; a run over good images mixed with every poisoned file completes and names the bad ones."""

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.reliability import poison_images
from groundloop.worlds import shapes as world

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli") / "test"
    world.generate(d, "test", 4, seed=9)
    return d


def with_poisons(split: Path, dest: Path) -> Path:
    """A copy of the split with every poison file added as an image of its own."""
    (dest / "images").mkdir(parents=True)
    for p in (split / "images").iterdir():
        (dest / "images" / p.name).write_bytes(p.read_bytes())
    inst = json.loads((split / "instances.json").read_text())
    for i, (name, data) in enumerate(poison_images().items()):
        (dest / "images" / name).write_bytes(data)
        inst["images"].append({"id": 900 + i, "file_name": name, "width": 96, "height": 96})
    (dest / "instances.json").write_text(json.dumps(inst))
    (dest / "captions.json").write_text((split / "captions.json").read_text())
    return dest


def one_line_error(capsys, call) -> str:
    with pytest.raises(SystemExit) as e:
        call()
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def evaluate(argv):
    old = sys.argv
    sys.argv = ["evaluate.py", *argv]
    try:
        return runpy.run_path(str(ROOT / "pipelines" / "evaluate.py"), run_name="not_main")["main"]()
    finally:
        sys.argv = old


def test_bad_svp_command_lines_are_one_line_exit_2_and_nothing_runs(split, tmp_path, capsys):
    from pipelines.svp import run as svp

    (tmp_path / "broken.yaml").write_text("sampling: {k: [1,\n")
    base = [f"run.dir={tmp_path / 'runs'}", f"data.path={split}", f"data.eval_path={split}"]
    cases = {
        ("--config", str(tmp_path / "missing.yaml")): "missing.yaml: config file not found",
        ("--config", str(tmp_path / "broken.yaml")): "broken.yaml: not valid YAML",
        ("data.path=/nonexistent/split",): "data.path: /nonexistent/split does not exist",
        ("model.vlm=/nonexistent/vlm",): "model.vlm: no model folder /nonexistent/vlm",
        ("model.detector=shapesworld/nope",): "model.detector: no shipped ShapesWorld model",
        ("sampling.k=2.7",): "sampling.k: expected an integer, got 2.7",
        ("sampling.k=true",): "sampling.k: expected an integer, got True",
        ("sampling.k=0",): "sampling.k must be >= 1, got 0",
        ("sampling.k=-1",): "sampling.k must be >= 1, got -1",
        ("data.n_images=-5",): "data.n_images must be >= 1, got -5",
        ("data.vocabulary=animals",): "data.vocabulary must be one of",
        ("sampling.k",): "is not key=value",
        ("--bogus",): "unrecognized arguments: --bogus",
    }
    for args, words in cases.items():
        line = one_line_error(capsys, lambda args=args: svp.main([*base, *args]))
        assert words in line, (args, line)
    assert not (tmp_path / "runs").exists()  # no run folder, no Ray: the checks come first


def test_bad_evaluate_command_lines_are_one_line_exit_2(split, tmp_path, capsys):
    out = ["--out", str(tmp_path / "r.json")]
    cases = {
        ("--data", "/nonexistent"): "--data: /nonexistent does not exist",
        ("--data", str(split), "--model", "/nonexistent/vlm"): "--model: no model folder",
        ("--data", str(split), "--adapter", str(tmp_path / "no_adapter")): "--adapter: no model folder",
        ("--data", str(split), "--n", "-5"): "--n must be >= 1, got -5",
        ("--data", str(split), "--n", "2.5"): "invalid int value: '2.5'",
    }
    for args, words in cases.items():
        line = one_line_error(capsys, lambda args=args: evaluate([*args, *out]))
        assert words in line, (args, line)
    assert not (tmp_path / "r.json").exists()


def test_an_evaluation_with_no_readable_image_is_an_error_not_chair_zero(split, tmp_path):
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "instances.json").write_text((split / "instances.json").read_text())  # every image missing
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "pipelines" / "evaluate.py"),
            "--data",
            str(empty),
            "--out",
            str(tmp_path / "r.json"),
            "--no-pope",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith("error: none of the 4 images could be read"), proc.stderr[-500:]
    assert "Traceback" not in proc.stderr and not (tmp_path / "r.json").exists()


def test_a_changed_config_on_resume_is_one_line_from_the_real_process(split, tmp_path):
    """The error hook: ConfigChanged escapes main, the process prints one line and exits 2."""
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    args = ["run.name=r", f"run.dir={tmp_path / 'runs'}", f"data.path={split}", f"data.eval_path={split}"]
    from groundloop.config import load, to_dict
    from pipelines.svp.config import SVPConfig

    (run / "config.json").write_text(json.dumps(to_dict(load(SVPConfig, None, args))))
    (run / "state.json").write_text('{"done": {"eval_base": 1.0}}')
    proc = subprocess.run(
        [sys.executable, str(ROOT / "pipelines" / "svp.py"), *args, "sampling.k=3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-800:]
    assert lines[0].startswith("error: ") and "sampling.k: 8 -> 3" in lines[0]
    assert (run / "state.json").read_text() == '{"done": {"eval_base": 1.0}}'


def test_an_evaluation_over_good_and_poisoned_images_names_exactly_the_bad_files(split, tmp_path):
    data = with_poisons(split, tmp_path / "mixed")
    out = tmp_path / "r.json"
    report = evaluate(["--data", str(data), "--out", str(out), "--no-pope", "--max-new-tokens", "30"])
    assert report["n_images"] == 4 and report["n_errors"] == len(poison_images())
    errors = [json.loads(x) for x in (tmp_path / "r.errors.jsonl").read_text().splitlines()]
    assert sorted(Path(e["path"]).name for e in errors) == sorted(poison_images())
    assert all(e["error"].startswith("unreadable image: ") for e in errors)


@pytest.mark.slow
@pytest.mark.ray
def test_svp_over_good_and_poisoned_images_finishes_every_stage(ray_cluster, split, tmp_path):
    from pipelines.svp import run as svp

    data = with_poisons(split, tmp_path / "mixed")
    args = [
        "run.name=p",
        f"run.dir={tmp_path}",
        f"data.path={data}",
        f"data.eval_path={data}",
        "data.n_images=100",
        "data.eval_n_images=100",
        "sampling.k=2",
        "sampling.max_new_tokens=30",
        "svp.iterations=1",
        "train.batch_size=2",
        "train.epochs=1",
        "resources.batch_size=4",
    ]
    report = svp.main(["--config", "configs/svp_shapes.yaml", *args])
    state = json.loads((tmp_path / "p" / "state.json").read_text())["done"]
    assert {"eval_base", "iter_1/sample_score_select", "iter_1/train", "iter_1/eval"} <= set(state)
    errors = [json.loads(x) for x in (tmp_path / "p" / "errors.jsonl").read_text().splitlines()]
    assert sorted(Path(e["path"]).name for e in errors) == sorted(poison_images())
    assert report["iterations"][0]["metrics"]["n_captions"] == 4
