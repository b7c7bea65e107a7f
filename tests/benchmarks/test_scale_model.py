"""benchmarks/scale_model.py: the SVP scale model runs from the committed results files, marks
every input measured or assumed, and responds to its inputs the way a reader expects."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("scale_model", ROOT / "benchmarks" / "scale_model.py")
scale_model = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(scale_model)


def run(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / f"model{len(list(tmp_path.iterdir()))}.json"
    scale_model.main(["--out", str(out), *args])
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> dict:
    return run(tmp_path_factory.mktemp("scale"))


def test_every_input_is_marked_measured_or_assumed_with_its_source(model):
    inputs = model["inputs"]
    assert {v["kind"] for v in inputs.values()} == {"measured", "assumed"}
    for name, v in inputs.items():
        assert v["source"] and v["unit"] is not None, name
        if v["kind"] == "measured" and v["source"].startswith("benchmarks/results/"):
            assert (ROOT / v["source"].split(":")[0]).exists(), name
    # the plumbing figures come from the streaming benchmark's committed runs
    assert inputs["block_overhead_s"]["kind"] == "measured"
    assert "svp_streaming.json" in inputs["block_overhead_s"]["source"]
    assert inputs["decode_tps_hf"]["kind"] == "assumed"


def test_settings_follow_configs_svp_coco_yaml(model):
    """Every input the model names as a setting of configs/svp_coco.yaml has the recipe's value, so
    the "as coded" scenario models the recipe as it is (pools, batch sizes, K)."""
    import yaml

    recipe = yaml.safe_load((ROOT / "configs" / "svp_coco.yaml").read_text())
    named = 0
    for name, v in model["inputs"].items():
        if v["kind"] != "assumed" or not v["source"].startswith("configs/svp_coco.yaml "):
            continue
        section, key = v["source"].split()[1].split(".")
        assert recipe[section][key] == v["value"], name
        named += 1
    assert named >= 14
    assert model["grounding"] == recipe["svp"]["grounding"]


def test_more_gpus_shorten_the_run_but_not_below_its_floor(model):
    coded = model["scenarios"]["as_coded"]
    w8, w64 = coded["by_gpus"]["8"]["wall_h"], coded["by_gpus"]["64"]["wall_h"]
    assert w64 < w8
    assert w64 >= coded["non_scaling_floor_h"]
    assert coded["by_gpus"]["64"]["held_gpu_hours"] >= coded["busy_gpu_hours"]["total"] * 0.99
    # the recipe's pools: the detector's share of the GPUs sets the rate; pools sized to the work do better
    assert coded["bottleneck_stage"] == "detection"
    balanced = model["scenarios"]["balanced_pools"]
    assert balanced["busy_gpu_hours"]["total"] == coded["busy_gpu_hours"]["total"]
    assert balanced["by_gpus"]["8"]["wall_h"] < w8
    # with the detector on two CPU grounder actors instead, more GPUs change nothing
    cpu = model["scenarios"]["detector_on_cpu"]
    assert cpu["by_gpus"]["8"]["limited_by"] == "detection_cpu"
    assert cpu["by_gpus"]["64"]["wall_h"] == cpu["by_gpus"]["8"]["wall_h"] > 10 * w8


def test_faster_decoding_shortens_sampling_only(tmp_path):
    base = run(tmp_path, "--decode-tps-hf", "1500")["scenarios"]["balanced_pools_gpu_eval"]
    fast = run(tmp_path, "--decode-tps-hf", "3000")["scenarios"]["balanced_pools_gpu_eval"]
    for stage in ("prior_sampling", "guided_sampling"):
        assert fast["seconds_per_image"][stage] < base["seconds_per_image"][stage]
    assert fast["seconds_per_image"]["scoring"] == base["seconds_per_image"]["scoring"]
    assert fast["busy_gpu_hours"]["total"] < base["busy_gpu_hours"]["total"]
    assert fast["by_gpus"]["64"]["wall_h"] < base["by_gpus"]["64"]["wall_h"]


def test_image_grounding_makes_one_detector_call_per_image(tmp_path):
    sample = run(tmp_path, "--grounding", "sample")["scenarios"]["as_coded"]
    image = run(tmp_path, "--grounding", "image")["scenarios"]["as_coded"]
    k = 20
    decode = k * 0.005  # every grounder row still decodes its image
    assert sample["seconds_per_image"]["detection_gpu"] - decode == pytest.approx(k / 8, rel=1e-3)
    assert image["seconds_per_image"]["detection_gpu"] - decode == pytest.approx(1 / 8, rel=1e-2)
