import sys
from pathlib import Path

import pytest

# pipelines/ and actors/ are top-level folders, not installed packages
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


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
