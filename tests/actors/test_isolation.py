"""One row that fails inside a model fails alone: the batch's other rows are answered and the
failing row carries its error (plumbing: a sampler scripted to fail on one image)."""

import pandas as pd
from PIL import Image

from actors import isolated


def test_isolated_retries_rows_alone_when_the_batch_fails():
    errors = ["", "", ""]

    def call(rows):
        if 1 in rows:
            raise RuntimeError("row 1 is cursed")
        return [f"ok {i}" for i in rows]

    assert isolated(call, [0, 1, 2], errors, "sampling") == {0: "ok 0", 2: "ok 2"}
    assert errors == ["", "sampling failed: RuntimeError: row 1 is cursed", ""]
    assert isolated(call, [0, 2], ["", ""], "sampling") == {0: "ok 0", 2: "ok 2"}  # one batched call


class FailsOnGreen:
    """A sampler that breaks on any batch holding a green image, as a model breaks on one input."""

    def generate(self, images, texts, n=1, temperature=0.0, top_p=1.0):
        if any(im.getpixel((0, 0)) == (0, 255, 0) for im in images):
            raise ValueError("cannot caption green")
        return [[f"caption {k}" for k in range(n)] for _ in images]


def test_a_failing_row_in_a_sampler_batch_leaves_the_others_answered(tmp_path):
    from actors.sampler import SamplerActor

    paths = []
    for name, colour in (("a", (255, 0, 0)), ("b", (0, 255, 0)), ("c", (0, 0, 255))):
        Image.new("RGB", (16, 16), colour).save(tmp_path / f"{name}.png")
        paths.append(str(tmp_path / f"{name}.png"))
    actor = SamplerActor.__new__(SamplerActor)
    actor.mode, actor.k, actor.temperature, actor.top_p, actor.sampler = "prior", 2, 1.0, 1.0, FailsOnGreen()
    out = actor(pd.DataFrame({"image_id": [1, 2, 3], "path": paths, "error": ["", "", ""]}))
    good = out[out["error"] == ""]
    assert sorted(good["image_id"].unique()) == [1, 3] and len(good) == 4
    (bad,) = out[out["image_id"] == 2]["error"]
    assert bad == "sampling failed: ValueError: cannot caption green"
