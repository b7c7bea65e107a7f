from __future__ import annotations

import pandas as pd
from PIL import Image

from groundloop.data.coco import ImageError, load_image


def read_rows(batch: pd.DataFrame) -> tuple[list[Image.Image | None], list[str]]:
    """The image of each row (None when unreadable) and the error text ('' when fine)."""
    images: list[Image.Image | None] = []
    errors: list[str] = []
    for path, err in zip(batch["path"], batch.get("error", [""] * len(batch))):
        if err:
            images.append(None)
            errors.append(err)
            continue
        try:
            images.append(load_image(path))
            errors.append("")
        except ImageError as e:
            images.append(None)
            errors.append(str(e))
    return images, errors
