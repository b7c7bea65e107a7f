"""benchmarks/svp_throughput.py on 2 val images, K=2, 16-token captions, as its own process (it
starts its own Ray cluster): the loop and the Ray pipeline make the same number of samples, and
the speed-ups svp.md quotes are positive and finite with batched and one-at-a-time scores equal."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.ray
def test_svp_throughput_tiny(shapes_split, tmp_path):
    data = shapes_split("val", 2)
    out = tmp_path / "svp_throughput.json"
    cmd = [sys.executable, "benchmarks/svp_throughput.py", "--data", str(data), "--n", "2", "--out", str(out)]
    cmd += ["sampling.k=2", "sampling.max_new_tokens=16"]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["k"] == 2 and r["n_images"] == 2
    assert r["loop"]["samples"] == r["ray"]["samples"] == 2 * 2
    assert math.isfinite(r["ray_speedup"]) and r["ray_speedup"] > 0
    s = r["scoring"]
    assert s["captions"] == 4 and math.isfinite(s["speedup"]) and s["speedup"] > 0
    assert s["max_abs_score_difference"] < 1e-3
