"""Ray Data actor that captions images through a running Serve deployment (its handle), so
pipelines share the endpoint's decoder, models and dynamic batches."""

from __future__ import annotations

import pandas as pd

from actors import require


class ServeCaptionActor:
    def __init__(self, app_name: str, decoder: str = "vimar") -> None:
        from ray import serve

        self.handle = serve.get_app_handle(app_name)
        self.decoder = decoder

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        require(batch, ["image_id", "path"], "ServeCaptionActor")
        captions, errors = [], []
        for path in batch["path"]:
            try:  # one call per image: the deployment batches them with everyone else's
                captions.append(self.handle.caption_paths.remote([path], self.decoder))
                errors.append("")
            except Exception as e:  # noqa: BLE001 - recorded per row, the rest go on
                captions.append(None)
                errors.append(repr(e))
        out = []
        for c, e in zip(captions, errors):
            if c is None:
                out.append(("", e))
                continue
            try:
                out.append((c.result()[0], ""))
            except Exception as ex:  # noqa: BLE001 - an unreadable image fails only its row
                out.append(("", repr(ex)))
        return batch.assign(caption=[c for c, _ in out], error=[e for _, e in out])
