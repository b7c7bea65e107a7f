import pytest

from groundloop.config import ConfigError, load
from pipelines.svp.config import SVPConfig


def test_yaml_recipe_and_dotted_overrides(tmp_path):
    cfg = load(SVPConfig, "configs/svp_shapes.yaml", ["sampling.k=20", "train.lora.r=64", "svp.score=delta"])
    assert cfg.sampling.k == 20 and cfg.train.lora.r == 64 and cfg.svp.score == "delta"
    import yaml

    raw = yaml.safe_load(open("configs/svp_shapes.yaml"))
    assert cfg.train.lora.alpha == raw["train"]["lora"]["alpha"]  # untouched values come from the YAML
    assert cfg.data.n_images == raw["data"]["n_images"]


def test_unknown_keys_are_errors_that_name_the_key():
    with pytest.raises(ConfigError, match="sampling.kk"):
        load(SVPConfig, None, ["sampling.kk=3"])
    with pytest.raises(ConfigError, match="nope"):
        load(SVPConfig, None, ["nope.x=1"])


def test_bad_values_are_errors():
    with pytest.raises(ConfigError, match="sampling.k"):
        load(SVPConfig, None, ["sampling.k=many"])
    with pytest.raises(ValueError, match="svp.score"):
        load(SVPConfig, None, ["svp.score=bleu"])
    with pytest.raises(ConfigError, match="key=value"):
        load(SVPConfig, None, ["sampling.k"])


def test_ablation_comparison_list_is_checked():
    cfg = load(SVPConfig, "configs/svp_shapes.yaml", ["svp.compare_ablations=[no_feedback,no_scoring]"])
    assert cfg.svp.compare_ablations == ("no_feedback", "no_scoring")
    assert load(SVPConfig, None, ["svp.compare_ablations=[]"]).svp.compare_ablations == ()
    with pytest.raises(ValueError, match="compare_ablations"):
        load(SVPConfig, None, ["svp.compare_ablations=[no_grounding]"])


def test_a_rerun_with_other_settings_is_refused_not_silently_resumed(tmp_path):
    from pipelines.common.cli import ConfigChanged, start_run

    base = ["run.name=r", f"run.dir={tmp_path}"]
    run_dir = start_run(load(SVPConfig, "configs/svp_shapes.yaml", base), "SVP")
    (run_dir / "state.json").write_text('{"done": {"eval_base": 1.0}}')  # the run got somewhere
    start_run(load(SVPConfig, "configs/svp_shapes.yaml", base), "SVP")  # same settings: resumes
    start_run(load(SVPConfig, "configs/svp_shapes.yaml", [*base, "resources.sampler_actors=3"]), "SVP")
    with pytest.raises(ConfigChanged, match=r"data.n_images: 1000 -> 9, svp.top_fraction: 0.5 -> 0.2"):
        start_run(load(SVPConfig, "configs/svp_shapes.yaml", [*base, "svp.top_fraction=0.2", "data.n_images=9"]), "SVP")
    # another name is a fresh run
    start_run(
        load(SVPConfig, "configs/svp_shapes.yaml", ["run.name=r2", f"run.dir={tmp_path}", "svp.top_fraction=0.2"]),
        "SVP",
    )
