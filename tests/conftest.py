import pytest


@pytest.fixture(scope="session")
def reward_model_folder(tmp_path_factory):
    """A reward-model folder: a fresh LoRA adapter on the shipped VLM (plumbing, untrained)."""
    import json

    from groundloop.finetune import add_lora
    from groundloop.models import REWARD_MODEL_FILE, load_vlm

    folder = tmp_path_factory.mktemp("rm")
    model, _ = load_vlm("shapesworld/vlm")
    add_lora(model, 4, 8, 0.0, r".*language_model.*\.(q_proj|v_proj)").save_pretrained(folder)
    (folder / REWARD_MODEL_FILE).write_text(json.dumps({"base": "shapesworld/vlm"}))
    return str(folder)


@pytest.fixture(scope="session")
def grounding_dino(tmp_path_factory):
    """A tiny random-init GroundingDINO folder (model + processor), loaded the real way."""
    from tests.groundloop.test_hf_detectors import build_grounding_dino

    folder = tmp_path_factory.mktemp("gdino") / "model"
    build_grounding_dino(folder)
    return str(folder)


@pytest.fixture(scope="session")
def family_folders(tmp_path_factory):
    """A built tiny model folder per family, made on first use and kept for the session."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    root = tmp_path_factory.mktemp("families")
    built: dict[str, str] = {}

    def get(family: str) -> str:
        if family not in built:
            from tests.families import tiny

            built[family] = str(tiny.build(family, root / family))
        return built[family]

    return get


@pytest.fixture(scope="session")
def two_images():
    from PIL import Image

    return [Image.new("RGB", (40, 30), (200, 30, 30)), Image.new("RGB", (24, 48), (30, 200, 30))]
