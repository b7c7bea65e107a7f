"""Model loading, one place, one spec string.

A spec is a hub id (`llava-hf/llava-1.5-7b-hf`, `IDEA-Research/grounding-dino-tiny`,
`openai/clip-vit-large-patch14-336`), a local folder, or a shipped ShapesWorld model
(`shapesworld/vlm`, `shapesworld/detector`, `shapesworld/clip`, `shapesworld/value`,
`shapesworld/genrm`). Everything goes through
the ordinary transformers / peft `from_pretrained` path.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from groundloop.models.detection import Detection, Detector, nms

__all__ = [
    "Detection",
    "Detector",
    "nms",
    "resolve",
    "load_vlm",
    "load_detector",
    "load_clip",
    "load_value",
    "load_reward_model",
    "REWARD_MODEL_FILE",
]

SHAPESWORLD_DIR = Path(__file__).resolve().parent.parent / "assets" / "shapesworld"
SHAPESWORLD_PREFIX = "shapesworld/"


def resolve(spec: str) -> str:
    """The local folder of a ShapesWorld model; other specs pass through unchanged."""
    if spec.startswith(SHAPESWORLD_PREFIX):
        folder = SHAPESWORLD_DIR / spec[len(SHAPESWORLD_PREFIX) :]
        if not ((folder / "config.json").exists() or (folder / "adapter_config.json").exists()):
            known = sorted(p.name for p in SHAPESWORLD_DIR.iterdir()) if SHAPESWORLD_DIR.exists() else []
            raise FileNotFoundError(f"no shipped ShapesWorld model {spec!r} (have {known})")
        return str(folder)
    return spec


def _local_config(spec: str) -> dict[str, Any]:
    cfg = Path(spec) / "config.json"
    return json.loads(cfg.read_text()) if cfg.exists() else {}


def load_vlm(spec: str, adapter: str | None = None, dtype: Any = None, device: str | None = None) -> tuple[Any, Any]:
    """(model, processor) of a VLM of any family `groundloop.models.families` knows, optionally
    with a PEFT adapter on top, on `device` (default: the GPU when there is one). `dtype`
    defaults to bfloat16 on a GPU that has it (a 7B model in float32 is 28 GB per copy) and to
    float32 on the CPU; S / Delta and the losses take their log-softmax in float32 either way."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from groundloop.models.compat import allow_processors_without_torchvision

    allow_processors_without_torchvision()
    path = resolve(spec)
    # Any: a transformers model, or a PeftModel once the adapter is on.
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype is None:
        gpu_bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()
        dtype = torch.bfloat16 if gpu_bf16 else torch.float32
    model: Any = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype)
    model = model.to(device)
    processor = AutoProcessor.from_pretrained(path)  # type: ignore[no-untyped-call]  # untyped in transformers
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    return model.eval(), processor


def load_clip(spec: str) -> tuple[Any, Any]:
    """(CLIPModel, processor) for image-text similarity."""
    from transformers import AutoProcessor, CLIPModel

    path = resolve(spec)
    model = CLIPModel.from_pretrained(path).eval()  # type: ignore[no-untyped-call]  # untyped in transformers
    return model, AutoProcessor.from_pretrained(path)  # type: ignore[no-untyped-call]  # untyped in transformers


# Detectors that are not transformers models, by the `detector_type` of their config.json: the
# class that loads them, as "module:Class" (imported on use, so the synthetic world's code is
# loaded only for its own models).
DETECTOR_TYPES = {"shapesworld": "groundloop.worlds.detector:ShapesWorldDetector"}


def load_detector(spec: str, **options: Any) -> Detector:
    """A `Detector`: ShapesWorld's own, or transformers GroundingDINO / OWLv2 by id or folder."""
    path = resolve(spec)
    kind = _local_config(path).get("detector_type")
    if kind in DETECTOR_TYPES:
        module, name = DETECTOR_TYPES[kind].split(":")
        detector: Detector = getattr(importlib.import_module(module), name).from_pretrained(path, **options)
        return detector
    from groundloop.models.hf_detectors import HFDetector

    return HFDetector.from_pretrained(path, **options)


def load_value(spec: str) -> Any:
    """ViMaR's value model (`groundloop.vimar.value.ValueModel`: VLM backbone + value head, with
    its reward and threshold calibration in `.meta`) from a folder or `shapesworld/value`."""
    from groundloop.vimar.value import ValueModel

    return ValueModel.from_pretrained(resolve(spec))


REWARD_MODEL_FILE = "genrm.json"  # beside a reward model's PEFT adapter: {"base": <VLM spec>}


def load_reward_model(spec: str, base: str | None = None, **options: Any) -> Any:
    """VL-GenRM (`groundloop.genrm.judge.GenRM`): the base VLM named in the folder's genrm.json (a
    spec, or a sub-folder of it), or `base`, with the folder's PEFT adapter on top. How it
    writes critiques (`critique=`) defaults to its recipe's `sampling.critique`, and the
    factored checks' threshold (`check_threshold=`) to the calibrated one in genrm.json, and
    the vocabulary its claims are read with (`vocab=`) to the one its genrm.json names."""
    from groundloop.genrm.judge import GenRM

    folder = Path(resolve(spec))
    meta_file = folder / REWARD_MODEL_FILE
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    if base is None:
        if not meta:
            raise FileNotFoundError(
                f"{folder} is not a reward model folder (no {REWARD_MODEL_FILE}); pass base= to name its VLM"
            )
        base = meta["base"]
        if (folder / base / "config.json").exists():  # a base shipped inside the folder
            base = str(folder / base)
    critique = meta.get("recipe", {}).get("sampling", {}).get("critique")
    if critique and "critique" not in options:
        options["critique"] = critique
    if meta.get("vocabulary") and "vocab" not in options:
        from groundloop import vocab

        options["vocab"] = vocab.get(meta["vocabulary"])
    if "check_threshold" in meta and "check_threshold" not in options:
        options["check_threshold"] = float(meta["check_threshold"])
    return GenRM(*load_vlm(base, adapter=str(folder)), **options)
