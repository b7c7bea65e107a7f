import json

import pytest
from PIL import Image

from groundloop.data.coco import DataError, ImageError, load_coco, load_dataset, load_image


def _write(tmp_path, images, annotations, captions=None, cats=None):
    (tmp_path / "images").mkdir(exist_ok=True)
    cats = cats or [{"id": 1, "name": "dog"}, {"id": 2, "name": "cat"}]
    (tmp_path / "instances.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": cats, "licenses": []})
    )
    if captions is not None:
        (tmp_path / "captions.json").write_text(json.dumps({"annotations": captions}))


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "RGB", "I;16"])
def test_any_image_mode_and_size_becomes_rgb(tmp_path, mode):
    ext = "jpg" if mode == "CMYK" else "png"
    path = tmp_path / f"x.{ext}"
    Image.new(mode, (37, 19)).save(path)
    im = load_image(path)
    assert im.mode == "RGB" and im.size == (37, 19)


def test_reader_tolerates_extra_fields_and_missing_captions(tmp_path):
    _write(
        tmp_path,
        [{"id": 5, "file_name": "a.png", "width": 10, "height": 10, "flickr_url": "x"}],
        [
            {
                "id": 1,
                "image_id": 5,
                "category_id": 2,
                "bbox": [1, 2, 3, 4],
                "segmentation": [],
                "area": 12,
                "iscrowd": 0,
                "color": "red",
            }
        ],
    )
    recs = load_dataset(tmp_path)
    assert len(recs) == 1 and recs[0].captions == ()
    assert recs[0].objects[0].category == "cat" and recs[0].objects[0].attributes == {"color": "red"}


def test_reader_attaches_captions(tmp_path):
    _write(
        tmp_path,
        [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"}],
        [],
        captions=[{"id": 1, "image_id": 2, "caption": "a dog"}],
    )
    recs = load_dataset(tmp_path)
    assert [r.captions for r in recs] == [(), ("a dog",)]


def test_missing_field_is_named(tmp_path):
    _write(tmp_path, [{"id": 1, "file_name": "a.png"}], [{"id": 9, "image_id": 1, "bbox": [0, 0, 1, 1]}])
    with pytest.raises(DataError, match="category_id") as e:
        load_dataset(tmp_path)
    assert "instances.json" in str(e.value)


def test_bad_bbox_and_unknown_category_are_named(tmp_path):
    _write(tmp_path, [{"id": 1, "file_name": "a.png"}], [{"id": 9, "image_id": 1, "category_id": 1, "bbox": [0, 0]}])
    with pytest.raises(DataError, match="bbox"):
        load_dataset(tmp_path)
    _write(
        tmp_path, [{"id": 1, "file_name": "a.png"}], [{"id": 9, "image_id": 1, "category_id": 77, "bbox": [0, 0, 1, 1]}]
    )
    with pytest.raises(DataError, match="77"):
        load_coco(tmp_path / "instances.json", tmp_path / "images")


def test_not_json_is_named(tmp_path):
    (tmp_path / "instances.json").write_text("{nope")
    with pytest.raises(DataError, match="instances.json"):
        load_dataset(tmp_path)


def test_corrupt_truncated_and_missing_images_name_the_file(tmp_path):
    (tmp_path / "corrupt.png").write_bytes(b"not an image at all")
    good = tmp_path / "good.png"
    Image.new("RGB", (64, 64), (200, 10, 10)).save(good)
    (tmp_path / "trunc.png").write_bytes(good.read_bytes()[:60])
    for name in ("corrupt.png", "trunc.png", "missing.png"):
        with pytest.raises(ImageError, match=name):
            load_image(tmp_path / name)
