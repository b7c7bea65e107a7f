"""benchmarks/serve_throughput.py at its smallest (2 clients x 1 request, greedy only), as its
own process (it starts its own Ray cluster and Serve): every request answered in both
applications, and the throughput ratio vimar.md quotes is positive and finite."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.ray
def test_serve_throughput_tiny(tmp_path):
    out = tmp_path / "serve_throughput.json"
    cmd = [sys.executable, "benchmarks/serve_throughput.py", "--out", str(out), "--clients", "2", "--per-client", "1"]
    p = subprocess.run([*cmd, "--batch", "2", "--decoders", "greedy"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["clients"] == 2 and r["per_client"] == 1 and r["batch"] == 2
    g = r["greedy"]
    for app in ("batch_1", "batch_2"):
        assert g[app]["requests"] == 2 and g[app]["errors"] == 0, g[app]["first_error"]
        assert g[app]["captions_per_s"] > 0 and g[app]["latency_p50_s"] <= g[app]["latency_p99_s"]
    assert math.isfinite(g["throughput_ratio"]) and g["throughput_ratio"] > 0
