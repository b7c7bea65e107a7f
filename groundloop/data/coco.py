"""Reading COCO-format datasets: ShapesWorld splits and COCO's own layout alike.

Tolerant of what real COCO-format data does (extra fields, missing caption files, images
in any mode and size) and loud about what it cannot use (a missing field, an unreadable
image), always naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from PIL import Image

from groundloop import images
from groundloop.images import ImageError as ImageError  # re-exported: where the call sites import it from


class DataError(ValueError):
    """A dataset file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class ObjectAnn:
    category: str
    bbox: tuple[float, float, float, float]  # COCO xywh in pixels
    attributes: dict[str, Any] = field(default_factory=dict)  # e.g. ShapesWorld colour, size


@dataclass(frozen=True)
class ImageRecord:
    image_id: int
    path: Path
    width: int
    height: int
    objects: tuple[ObjectAnn, ...]
    captions: tuple[str, ...]

    @property
    def categories(self) -> set[str]:
        return {o.category for o in self.objects}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise DataError(f"{path}: file not found") from e
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object at the top level")
    return data


def _need(row: dict[str, Any], key: str, where: str) -> Any:
    if key not in row:
        raise DataError(f"{where}: missing field {key!r} in {json.dumps(row)[:200]}")
    return row[key]


def load_coco(instances: Path, images_dir: Path, captions: Path | None = None) -> list[ImageRecord]:
    """Records for every image listed in `instances`, in file order."""
    inst = _read_json(instances)
    where = str(instances)
    cats = {_need(c, "id", where): _need(c, "name", where) for c in inst.get("categories", [])}
    objects: dict[int, list[ObjectAnn]] = {}
    for a in _need(inst, "annotations", where):
        cid = _need(a, "category_id", where)
        if cid not in cats:
            raise DataError(f"{where}: annotation {a.get('id')} has unknown category_id {cid}")
        bbox = _need(a, "bbox", where)
        if not (isinstance(bbox, list) and len(bbox) == 4):
            raise DataError(f"{where}: annotation {a.get('id')} has bbox {bbox!r}, want [x,y,w,h]")
        attrs = {k: v for k, v in a.items() if k in ("color", "size", "position")}
        objects.setdefault(_need(a, "image_id", where), []).append(
            ObjectAnn(cats[cid], tuple(float(v) for v in bbox), attrs)  # type: ignore[arg-type]
        )
    caps: dict[int, list[str]] = {}
    if captions is not None and Path(captions).exists():
        for c in _need(_read_json(Path(captions)), "annotations", str(captions)):
            caps.setdefault(_need(c, "image_id", str(captions)), []).append(str(_need(c, "caption", str(captions))))
    records = []
    for im in _need(inst, "images", where):
        iid = _need(im, "id", where)
        records.append(
            ImageRecord(
                image_id=iid,
                path=Path(images_dir) / _need(im, "file_name", where),
                width=int(im.get("width", 0)),
                height=int(im.get("height", 0)),
                objects=tuple(objects.get(iid, [])),
                captions=tuple(caps.get(iid, [])),
            )
        )
    return records


def load_dataset(root: Path) -> list[ImageRecord]:
    """A ShapesWorld-layout folder: root/instances.json, root/captions.json, root/images/."""
    root = Path(root)
    return load_coco(root / "instances.json", root / "images", root / "captions.json")


def load_image(path: Path | BinaryIO) -> Image.Image:
    """The image (a file, or an open binary stream) as RGB, whatever its mode (L, RGBA, P,
    CMYK, ...); transparency is composited onto white. Read by groundloop.images under the
    endpoint's limits: any unreadable file is an ImageError naming it."""
    return images.load_image(path)
