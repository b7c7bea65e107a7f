"""Reading VL-RewardBench (Li et al. 2024, arXiv:2411.17451) from a local file: no network, no hub.

Schema, as published on the dataset card of `MMInstruction/VL-RewardBench`
(https://huggingface.co/datasets/MMInstruction/VL-RewardBench, README `dataset_info`):
`id` str, `query` str, `response` list[str] (two candidates), `image` an HF Image (in parquet a
struct {bytes, path}), `human_ranking` list[int] ("[0, 1] denotes the first one is preferred;
[1, 0] denotes the second one is better"), `models` list[str], `judge` str, `rationale` str,
`query_source` str, `ground_truth` str (earlier revisions also had `meta`, `human_error_analysis`).
The authors' GitHub dump (github.com/vl-rewardbench/VL_RewardBench, data/data.jsonl) has the same
rows with `image_path` (relative to its data/ folder) instead of `image`; both are accepted.

The three categories do NOT come from `query_source`: there it names the upstream dataset of the
query (COCO, TextVQA, LRVInstruction, POVID_preference_data_for_VLLMs, wildvision-battle, ...) and
is empty or absent on the reasoning rows. The reference scorers group rows by the `id` prefix:
lmms-eval (lmms_eval/tasks/vl_rewardbench/utils.py: `id.split("-")[0].split("_")[0].lower()`,
anything unlisted -> general) and, equivalently, the authors' cal.py (by image folder). `category_of`
reproduces that rule so per-category accuracies are comparable with published numbers.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from groundloop.data.coco import DataError, load_image

CATEGORIES = ("general", "hallucination", "reasoning")

# id prefix -> category, as in lmms-eval; VLFeedback rows carry their sub-source as prefix
# (LRVInstruction-, jailbreak-typo-, ...) and so fall through to "general" like there.
_PREFIX_CATEGORY = {
    "wildvision": "general",  # wildvision-battle-N
    "vlfeedback": "general",
    "hallucination": "hallucination",  # hallucination_pair-N (POVID)
    "rlaif": "hallucination",  # RLAIF-V-N
    "rlhf": "hallucination",  # RLHF-V-N
    "mathverse": "reasoning",  # mathverse_N
    "mmmu": "reasoning",  # mmmu_pro_{test,validation}_Subject_N
}


@dataclass(frozen=True)
class BenchPair:
    id: str
    category: str  # one of CATEGORIES
    prompt: str
    chosen: str  # the response ranked better (lower rank) by the human annotators
    rejected: str
    image: Image.Image  # RGB


def category_of(row_id: str) -> str:
    """The benchmark category of a row, from its id prefix (the reference scorers' rule)."""
    return _PREFIX_CATEGORY.get(row_id.split("-")[0].split("_")[0].lower(), "general")


def load_vlrewardbench(path: str | Path, image_root: str | Path | None = None) -> list[BenchPair]:
    """Every row of a local `.parquet` (as saved from the HF dataset), `.jsonl` or `.json` (a list
    of rows), in file order. An image given as a path is resolved against `image_root`, else the
    file's folder. A row may carry an explicit `category`, which must be one of CATEGORIES.
    """
    path = Path(path)
    root = Path(image_root) if image_root is not None else path.parent
    return [_pair(row, i, root, str(path)) for i, row in enumerate(_rows(path))]


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pandas as pd

        try:
            frame = pd.read_parquet(path)
        except Exception as e:  # pyarrow raises several unrelated types for a bad file
            raise DataError(f"{path}: not a readable parquet file ({type(e).__name__}: {e})") from e
        for record in frame.to_dict("records"):
            yield {str(k): _plain(v) for k, v in record.items()}
    elif suffix == ".jsonl":
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                yield _json_object(line, f"{path}:{n}")
    elif suffix == ".json":
        data = _json_value(path.read_text(), str(path))
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of rows at the top level")
        for n, row in enumerate(data):
            if not isinstance(row, dict):
                raise DataError(f"{path}: row {n} is {type(row).__name__}, want an object")
            yield row
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}, want .parquet, .jsonl or .json")


def _json_value(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: not valid JSON ({e})") from e


def _json_object(text: str, where: str) -> dict[str, Any]:
    row = _json_value(text, where)
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return row


def _plain(value: Any) -> Any:
    """pandas hands list columns back as numpy arrays of numpy scalars; make them plain Python."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _pair(row: dict[str, Any], index: int, root: Path, source: str) -> BenchPair:
    row_id = row.get("id")
    where = f"{source}: row {row_id!r}" if row_id is not None else f"{source}: row #{index}"

    def bad(field: str, why: str) -> DataError:
        return DataError(f"{where}: field {field!r} {why}")

    def need(field: str) -> Any:
        if field not in row or row[field] is None:
            raise bad(field, "is missing")
        return row[field]

    need("id")
    if not isinstance(row_id, str):
        raise bad("id", f"is {type(row_id).__name__}, want a string")
    prompt = need("query")
    if not isinstance(prompt, str):
        raise bad("query", f"is {type(prompt).__name__}, want a string")
    responses = need("response")
    if not (isinstance(responses, list) and len(responses) == 2 and all(isinstance(r, str) for r in responses)):
        raise bad("response", f"must be a list of 2 strings, got {_short(responses)}")
    ranking = need("human_ranking")
    if not (isinstance(ranking, list) and len(ranking) == 2):
        raise bad("human_ranking", f"must be a list of 2 ranks, got {_short(ranking)}")
    if not all(isinstance(r, int) and not isinstance(r, bool) for r in ranking):
        raise bad("human_ranking", f"must hold integer ranks, got {_short(ranking)}")
    if ranking[0] == ranking[1]:
        raise bad("human_ranking", f"is a tie {ranking}: no preferred response")
    if sorted(ranking) != [0, 1]:
        raise bad("human_ranking", f"must be [0, 1] or [1, 0], got {ranking}")
    best = ranking.index(0)

    category = row.get("category") or category_of(row_id)
    if category not in CATEGORIES:
        raise bad("category", f"is {category!r}, want one of {', '.join(CATEGORIES)}")

    field = next((f for f in ("image", "image_path") if row.get(f) is not None), None)
    if field is None:
        raise bad("image", "is missing")
    try:
        image = load_image(_image_source(row[field], root))
    except (OSError, ValueError, SyntaxError) as e:  # PIL's UnidentifiedImageError, base64's binascii.Error
        raise bad(field, f"cannot be read as an image ({type(e).__name__}: {e})") from e
    return BenchPair(row_id, category, prompt, responses[best], responses[1 - best], image)


def _image_source(value: Any, root: Path) -> Path | io.BytesIO:
    """HF parquet struct {bytes, path}, a JSON dict with base64 `bytes`, or a path string."""
    if isinstance(value, dict):
        data = value.get("bytes")
        if data is not None:
            return io.BytesIO(data if isinstance(data, bytes) else base64.b64decode(data, validate=True))
        value = value.get("path")
    if not isinstance(value, str) or not value:
        raise ValueError(f"want a path or a {{bytes, path}} dict, got {_short(value)}")
    return root / value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
