"""benchmarks/svp_streaming.py with cheap actors at 8 and 16 images and kills at the start and at
half of a 16-image stage, as its own process (every measurement is a fresh driver with its own Ray
cluster): rows = images x K in every run, the peak-RSS ratio cluster.md quotes is positive and
finite, and after the kill the resumed run has every row once."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.ray
def test_svp_streaming_tiny(tmp_path):
    out = tmp_path / "svp_streaming.json"
    cmd = [sys.executable, "benchmarks/svp_streaming.py", "--images", "8", "16", "--kill-images", "16"]
    cmd += ["--kill-at", "0.0", "0.5", "--out", str(out), "--set", "resources.batch_size=2"]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["actors"] == "cheap" and r["overrides"] == ["resources.batch_size=2"]
    assert [x["images"] for x in r["runs"]] == [8, 16]
    for x in r["runs"]:
        assert x["k"] == 1 and x["sink"]["images_written"] == x["images"]
        assert x["sink"]["rows_written"] == x["images"] * x["k"] and x["sink"]["duplicates_dropped"] == 0
        assert x["rss_peak_during_stage_mib"] >= x["rss_before_stage_mib"] > 0 and x["ru_maxrss_mib"] > 0
    ratio = r["peak_rss_ratio_largest_to_smallest"]
    assert math.isfinite(ratio) and ratio > 0
    first, half = r["kills"]
    assert first["killed"] and first["images_written_before_kill"] == 0  # killed at once
    for kill in (first, half) if half["killed"] else (first,):  # else it finished before half was written
        assert kill["rows"] == kill["expected_rows"] == 16 and kill["duplicates"] == 0
        assert kill["redone_written_before_kill"] == 0
