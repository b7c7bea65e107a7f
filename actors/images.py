from __future__ import annotations

import pandas as pd
from PIL import Image

from groundloop.images import ImageError, load_image


def read_rows(batch: pd.DataFrame) -> tuple[list[Image.Image | None], list[str]]:
    """The image of each row (None when unreadable) and the error text ('' when fine). Every
    image goes through groundloop.images, the endpoint's decoder and limits: a bad file fails
    its own row ("unreadable image: <path>: <reason>"), never the batch."""
    images: list[Image.Image | None] = []
    errors: list[str] = []
    for path, err in zip(batch["path"], batch.get("error", [""] * len(batch))):
        if isinstance(err, str) and err:
            images.append(None)
            errors.append(err)
            continue
        try:
            if not isinstance(path, str) or not path:
                raise ImageError(f"unreadable image: no image path ({path!r})")
            images.append(load_image(path))
            errors.append("")
        except ImageError as e:
            images.append(None)
            errors.append(str(e))
    return images, errors
