"""The one image decoder of the endpoint and the pipelines: hostile files end as ImageError."""

import io
from pathlib import Path

import pytest
from PIL import Image

from benchmarks.reliability import image_fuzz, png, poison_images
from groundloop.data.coco import ImageError as CocoImageError
from groundloop.images import ImageError, ImageLimits, ImageTooLarge, decode_image, load_image

SIZE_LIMITED = (
    "bomb_5000x5000.png",
    "bomb_header_20000x20000.png",
    "tall_1x20000.png",
    "tall_1x40000.png",
    "wide_40000x1.png",
    "over_bytes.png",
)


def test_the_call_sites_catch_the_same_error_class():
    assert CocoImageError is ImageError and issubclass(ImageTooLarge, ImageError)


@pytest.mark.parametrize("name", sorted(poison_images()))
def test_every_poison_file_is_an_image_error_naming_the_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(poison_images()[name])
    with pytest.raises(ImageError) as e:
        load_image(path)
    assert str(e.value).startswith(f"unreadable image: {path}: ")
    assert isinstance(e.value, ImageTooLarge) == (name in SIZE_LIMITED), str(e.value)
    with pytest.raises(ImageError):
        decode_image(poison_images()[name])


def test_a_missing_file_or_a_folder_is_an_image_error(tmp_path):
    with pytest.raises(ImageError, match="file not found"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="unreadable image"):
        load_image(tmp_path)


def test_images_within_the_limits_decode_to_rgb_with_transparency_on_white():
    rgba = Image.new("RGBA", (30, 20), (255, 0, 0, 0))
    buf = io.BytesIO()
    rgba.save(buf, format="PNG")
    im = decode_image(buf.getvalue())
    assert im.mode == "RGB" and im.size == (30, 20) and im.getpixel((0, 0)) == (255, 255, 255)
    assert decode_image(png(20, 400)).size == (20, 400)  # 1:20, at the ratio limit


def test_the_declared_type_must_match_the_bytes():
    data = png(8, 8)
    assert decode_image(data, mime="image/png").size == (8, 8)
    with pytest.raises(ImageError, match="labelled image/jpeg but the data is PNG"):
        decode_image(data, mime="image/jpeg")
    with pytest.raises(ImageError, match="not accepted"):
        decode_image(data, mime="image/svg+xml")


def test_the_resized_size_is_bounded_when_the_processor_is_known():
    limits = ImageLimits(resize_shortest_edge=336, max_resized_pixels=336 * 336 * 4)
    assert decode_image(png(100, 400), limits).size == (100, 400)
    with pytest.raises(ImageTooLarge, match="336x1680 after the processor's resize"):
        decode_image(png(100, 500), limits)


def test_two_thousand_mutated_images_raise_nothing_but_image_error(tmp_path):
    r = image_fuzz(2000, Path(tmp_path), seed=1)
    assert r["escaped"] == 0, r["escapes"]
    assert r["counts"]["decode_image/ok"] > 50 and r["counts"]["decode_image/refused"] > 1000


def test_palette_transparency_is_composited_onto_white_like_rgba():
    im = Image.new("P", (4, 2))
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.putdata([0, 1, 0, 1, 1, 0, 1, 0])
    for transparency in (1, bytes([255, 128])):
        buf = io.BytesIO()
        im.save(buf, format="PNG", transparency=transparency)
        expected = Image.new("RGB", im.size, (255, 255, 255))
        rgba = Image.open(io.BytesIO(buf.getvalue())).convert("RGBA")
        expected.paste(rgba, mask=rgba)
        got = decode_image(buf.getvalue())
        diffs = [abs(a - b) for p, q in zip(got.getdata(), expected.getdata()) for a, b in zip(p, q)]
        assert max(diffs) <= 1 and got.getpixel((0, 0)) == (255, 0, 0)
