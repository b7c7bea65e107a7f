"""benchmarks/vimar_speed.py at its smallest (1 fresh image, 1 repeat, 48-token captions; ~40 s
of CPU, so -m slow): visvm and vimar@k=2 each caption it, the speed-up vimar.md quotes is
positive and finite, and the ranking study's disagreements split into who hallucinates less."""

import math

import pytest

from benchmarks import vimar_speed


@pytest.mark.slow
def test_vimar_speed_tiny(tmp_path):
    out = tmp_path / "speed.json"
    r = vimar_speed.main(["--n", "1", "--repeats", "1", "--max-new-tokens", "48", "--out", str(out)])
    assert out.is_file()
    (rep,) = r["repeats"]
    assert rep["n_images"] == 1
    for spec in ("visvm", "vimar@k=2"):
        assert 0.0 <= rep[spec]["chair_i"] <= 1.0 and rep[spec]["sec_per_caption"] > 0
    assert math.isfinite(r["speedup"]["median"]) and r["speedup"]["median"] > 0
    assert r["speedup"]["min"] <= r["speedup"]["median"] <= r["speedup"]["max"]
    rank = rep["ranking"]
    assert rank["candidates_per_image"] == 30
    assert rank["disagreements"] == (
        rank["clip_pick_fewer_hallucinations"] + rank["value_pick_fewer_hallucinations"] + rank["equal_hallucinations"]
    )
    assert 0.0 <= r["same_pick"] <= 1.0
