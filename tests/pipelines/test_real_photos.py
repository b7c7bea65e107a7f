"""The loops on real photographs in COCO format (tests/fixtures/photos: five of scikit-image's
photos with hand-drawn boxes and captions, and one unreadable file) with the COCO vocabulary, a
tiny random LLaVA and a tiny random GroundingDINO: the runs complete, the unreadable file is
listed, and every report names the vocabulary."""

import json
from pathlib import Path

import pandas as pd
import pytest

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"


def test_evaluate_on_real_photos_with_coco_vocabulary_and_grounding_dino(family_folders, grounding_dino, tmp_path):
    from pipelines.evaluate import run as evaluate

    out = tmp_path / "photos.json"
    report = evaluate.main(
        [
            "--data",
            str(PHOTOS),
            "--model",
            family_folders("llava"),
            "--vocabulary",
            "coco",
            "--grounded",
            "--detector",
            grounding_dino,
            "--max-new-tokens",
            "12",
            "--out",
            str(out),
        ]
    )
    assert report["vocabulary"] == "coco" and report["grounded"]["vocabulary"] == "coco"
    assert report["n_images"] == 5 and report["n_errors"] == 1
    errors = [json.loads(x) for x in (tmp_path / "photos.errors.jsonl").read_text().splitlines()]
    assert [Path(e["path"]).name for e in errors] == ["unreadable.jpg"]
    assert report["n_truth"] == 6  # person, cat, cup + dining table, motorcycle, person
    assert set(report["pope"]) == {"random", "popular", "adversarial"}
    assert report["grounded"]["detector"] == grounding_dino


@pytest.mark.ray
def test_svp_on_real_photos_with_grounding_dino(ray_cluster, family_folders, grounding_dino, tmp_path):
    from peft import PeftModel

    from groundloop.models import families, load_vlm
    from pipelines.svp import run as svp

    vlm = family_folders("llava")
    report = svp.main(
        [
            "--config",
            "configs/svp_shapes.yaml",
            "run.name=photos",
            f"run.dir={tmp_path}",
            f"data.path={PHOTOS}",
            f"data.eval_path={PHOTOS}",
            "data.vocabulary=coco",
            "data.n_images=6",
            "data.eval_n_images=6",
            f"model.vlm={vlm}",
            f"model.detector={grounding_dino}",
            "sampling.k=2",
            "sampling.max_new_tokens=12",
            "svp.top_fraction=0.5",
            "train.epochs=1",
            "train.batch_size=2",
            "resources.batch_size=2",
        ]
    )
    run = tmp_path / "photos"
    assert report["base"]["vocabulary"] == "coco" and report["iterations"][0]["metrics"]["vocabulary"] == "coco"
    errors = [json.loads(x) for x in (run / "errors.jsonl").read_text().splitlines()]
    assert [Path(e["path"]).name for e in errors] == ["unreadable.jpg"]
    scored = pd.read_parquet(run / "iter_1" / "scored.parquet")
    good = scored[scored["error"] == ""]
    assert good["image_id"].nunique() == 5 and len(good) == 10
    adapter = run / "iter_1" / "adapter"
    peft = PeftModel.from_pretrained(load_vlm(vlm)[0], str(adapter))
    wrapped = [n for n, m in peft.named_modules() if type(m).__name__ == "Linear" and hasattr(m, "lora_A")]
    assert wrapped and all(".language_model." in n for n in wrapped)
    assert (
        json.loads((adapter / "adapter_config.json").read_text())["target_modules"]
        == families.FAMILIES["llava"].lora_targets
    )
