"""The shell benchmarks (benchmarks/*.sh).

By default, for every script: `bash -n` accepts it, every script, recipe and module it names
exists, and every dotted override it passes (`run.name=...`, `pairs.labeler=self`) is a key of
the recipe it passes it to. svp_shapes.sh and genrm_study.sh get only these checks: they fix
their own sizes (1000 val images and a full SVP iteration with two ablations, ~15 min; 2500
GenRM images and five recipe runs, ~1.5 h), so no tiny run of them exists.

Under -m slow, foundation.sh and vimar_decoders.sh run whole at the smallest size (N=2 images,
OUT=tmp, DATA=tmp, PYTHON=this interpreter) and their result files carry the fields the results
pages quote.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from groundloop import config as config_lib

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.sh"))
PATH = re.compile(r"(?<![\w/$.-])((?:benchmarks|pipelines|configs|scripts|serve|recipes)/[\w./-]+\.(?:py|sh|yaml))")
MODULE = re.compile(r"\s-m\s+([\w.]+)")
OVERRIDE = re.compile(r"(?<![\w./-])([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)+)=")
CONFIGS = {  # the entry point a script runs -> its config class
    "pipelines/svp.py": ("pipelines.svp.config", "SVPConfig"),
    "pipelines/genrm.py": ("pipelines.genrm.config", "GenRMConfig"),
    "pipelines/self_train.py": ("pipelines.self_train.config", "SelfTrainConfig"),
    "pipelines/train_value.py": ("pipelines.value.config", "ValueConfig"),
}


def test_there_are_shell_benchmarks():
    assert {p.name for p in SCRIPTS} >= {"foundation.sh", "genrm_study.sh", "svp_shapes.sh", "vimar_decoders.sh"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_benchmark_parses_and_names_what_exists(script):
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    paths = [p for p in PATH.findall(text) if not p.startswith("benchmarks/results/")]
    assert paths, "a benchmark script runs something from the tree"
    missing = [p for p in paths if not (ROOT / p).is_file()]
    assert not missing, f"{script.name} names files that do not exist: {missing}"
    for module in MODULE.findall(text):
        assert importlib.util.find_spec(module) is not None, f"{script.name}: no module {module}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_benchmark_overrides_are_recipe_keys(script):
    text = re.sub(r"\\\n", " ", script.read_text())  # one line per command
    runs = [(p, c) for p, c in re.findall(r"(pipelines/\w+\.py) --config (configs/[\w.-]+\.yaml)", text)]
    keys = set(OVERRIDE.findall(text))
    if not keys:
        return
    assert runs, f"{script.name} passes overrides {sorted(keys)} but runs no recipe"
    for entry, recipe in runs:
        module, name = CONFIGS[entry]
        cls = getattr(importlib.import_module(module), name)
        cfg = config_lib.to_dict(config_lib.load(cls, ROOT / recipe))
        unknown = []
        for key in keys:
            node = cfg
            for part in key.split("."):
                if not isinstance(node, dict) or part not in node:
                    unknown.append(key)
                    break
                node = node[part]
        assert not unknown, f"{script.name}: not keys of {recipe} ({name}): {sorted(unknown)}"


def run_script(name: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    e = os.environ | {"PYTHON": sys.executable} | env
    p = subprocess.run(["bash", str(ROOT / "benchmarks" / name), *args], env=e, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    return p


@pytest.mark.slow
def test_foundation_sh_at_two_images(tmp_path):
    out = tmp_path / "results"
    run_script("foundation.sh", "0", N="2", DATA=str(tmp_path / "data"), OUT=str(out))
    det = json.loads((out / "detector.json").read_text())
    assert det["n_images"] == 2 and det["precision"] == det["recall"] == 1.0
    clip = json.loads((out / "clip_ranking.json").read_text())
    assert clip["n_objects"] > 0 and 0.0 <= clip["top1_accuracy"] <= 1.0
    for name in ("vlm_test200.json", "vlm_test200_k4.json"):
        r = json.loads((out / name).read_text())
        assert r["n_images"] == r["n_captions"] == 2 and r["n_errors"] == 0
        assert 0.0 <= r["chair_i"] <= 1.0 and 0.0 <= r["recall"] <= 1.0
        assert r["n_hallucinated"] <= r["n_mentions"]
        assert math.isfinite(r["bleu4"]) and math.isfinite(r["cider"])
        assert r["grounded"]  # the grounded rows foundation.md quotes
        assert (out / name.replace(".json", ".captions.jsonl")).is_file()
    # POPE where foundation.md quotes it from (vlm_test200_k4.json), not in the prior-only run
    assert "pope" in json.loads((out / "vlm_test200_k4.json").read_text())
    assert "pope" not in json.loads((out / "vlm_test200.json").read_text())


@pytest.mark.slow
def test_vimar_decoders_sh_at_two_images(tmp_path):
    from groundloop.worlds import shapes

    data = tmp_path / "test"
    shapes.generate(data, "test", 2, seed=0)
    out = tmp_path / "vimar"
    run_script("vimar_decoders.sh", "2", OUT=str(out), DATA=str(data), DECODERS="greedy vimar@k=1")
    dec = json.loads((out / "decoders.json").read_text())
    assert set(dec) == {"greedy", "vimar@k=1"}
    for row in dec.values():
        assert row["n_captions"] == 2
        assert 0.0 <= row["chair_i"] <= 1.0 and 0.0 <= row["recall"] <= 1.0
        assert row["sec_per_caption"] > 0 and math.isfinite(row["sec_per_caption"])
    assert dec["vimar@k=1"]["value_calls_per_caption"] > 0 == dec["greedy"]["value_calls_per_caption"]
    assert (out / "eval.json").is_file() and (out / "log.txt").stat().st_size > 0
