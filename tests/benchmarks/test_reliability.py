"""benchmarks/reliability.py: the decoder fuzz (40 cases) and the pipeline part (evaluate.py over
6 good images and every poison file) by default; the endpoint part, a real Serve endpoint, under
-m slow with 30 malformed requests. Each asserts the figures vimar.md quotes: 0 escapes, every
poison named exactly, 0 5xx and the same replica before and after."""

import pytest

from benchmarks import reliability


def test_images_and_pipeline_parts(tmp_path):
    out = tmp_path / "reliability.json"
    r = reliability.main(["--parts", "images", "pipeline", "--image-cases", "40", "--out", str(out)])
    assert out.is_file()
    fuzz = r["image_fuzz"]
    assert fuzz["cases"] == 40 and fuzz["escaped"] == 0, fuzz["escapes"]
    for decoder in ("decode_image", "load_image", "endpoint"):
        assert fuzz["counts"].get(f"{decoder}/ok", 0) + fuzz["counts"].get(f"{decoder}/refused", 0) == 40
    assert set(r["poison_images"]) == set(reliability.poison_images())
    pipe = r["pipeline"]
    assert pipe["exit_code"] == 0, pipe["stderr_tail"]
    assert pipe["n_images"] == 6 and pipe["n_errors"] == len(reliability.poison_images())
    assert pipe["errors_name_exactly_the_poisons"] is True


@pytest.mark.slow
@pytest.mark.ray
def test_requests_part(tmp_path):
    out = tmp_path / "reliability.json"
    r = reliability.main(["--parts", "requests", "--requests", "30", "--concurrency", "4", "--out", str(out)])
    fuzz = r["malformed_fuzz"]
    assert fuzz["requests"] == 30 and sum(fuzz["statuses"].values()) == 30
    assert fuzz["5xx"] == 0 and fuzz["timeouts"] == 0 and fuzz["connection_errors"] == 0
    assert fuzz["replica_pid_before"] == fuzz["replica_pid_after"]
    assert all(p["status"] in (200, 400, 413, 415, 422) for p in r["poison_peak_rss"].values())
    batch = r["poisoned_batch"]
    assert batch["good_answered_200"] == 7 and batch["statuses"][3] != 200
