"""benchmarks/genrm_summary.py over committed run reports (the recipe run, its self-labelled
baseline and a noise run of the first bench): one table row per bench round, in both the JSON and
the Markdown, and the expert-noise plot once two noise levels are there."""

import json
import shutil
from pathlib import Path

from benchmarks import genrm_summary

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "genrm"


def test_summary_of_committed_runs(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    for src in ("runs/genrm_shapes", "runs/genrm_self", "bench_v1/runs/genrm_noise_0.2"):
        shutil.copytree(RESULTS / src, runs / Path(src).name)
    out = tmp_path / "out"
    monkeypatch.setattr("sys.argv", ["genrm_summary.py", "--runs", str(runs), "--out", str(out)])
    genrm_summary.main()
    rounds = {
        name: len(json.loads((runs / name / "report.json").read_text())["rounds"])
        for name in ("genrm_shapes", "genrm_self", "genrm_noise_0.2")
    }
    rows = json.loads((out / "summary.json").read_text())["rows"]
    assert [r["run"] for r in rows] == [
        n for n in ("genrm_shapes", "genrm_self", "genrm_noise_0.2") for _ in range(rounds[n])
    ]
    assert {r["noise"] for r in rows} == {0.0, 0.2}
    for r in rows:
        assert all(r[c] is None or 0.0 <= r[c] <= 1.0 for c in genrm_summary.CATS)
    table = (out / "summary.md").read_text().splitlines()
    assert len(table) == 2 + len(rows)
    assert all(line.count("|") == table[0].count("|") for line in table)
    assert (out / "noise.png").stat().st_size > 0  # genrm_shapes (0.0) and genrm_noise_0.2
