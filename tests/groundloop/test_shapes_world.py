import hashlib
import json
import random
import re

from pycocotools.coco import COCO

from groundloop.worlds import shapes as world


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def test_generate_is_coco_and_deterministic(tmp_path):
    world.main(["generate", "--out", str(tmp_path / "a"), "--split", "val", "--n", "12", "--seed", "3"])
    world.main(["generate", "--out", str(tmp_path / "b"), "--split", "val", "--n", "12", "--seed", "3"])
    world.main(["generate", "--out", str(tmp_path / "c"), "--split", "val", "--n", "12", "--seed", "4"])
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")
    inst = COCO(str(tmp_path / "a" / "instances.json"))
    caps = COCO(str(tmp_path / "a" / "captions.json"))
    assert len(inst.getImgIds()) == 12 and len(caps.getImgIds()) == 12
    assert {c["name"] for c in inst.loadCats(inst.getCatIds())} == set(world.SHAPES)
    for img_id in inst.getImgIds():
        anns = inst.loadAnns(inst.getAnnIds(imgIds=img_id))
        assert 1 <= len(anns) <= 6
        assert all(a["color"] in world.COLORS and a["size"] in world.SIZES for a in anns)
        assert (tmp_path / "a" / "images" / inst.loadImgs(img_id)[0]["file_name"]).exists()


def test_caption_has_counts_and_one_sentence_per_object():
    rng = random.Random(0)
    for _ in range(50):
        objects = world.sample_scene(rng, "test")
        cap = world.caption(objects)
        assert cap.startswith("In the image, there ")
        sentences = [s for s in re.split(r"(?<=\.) ", cap) if s]
        assert len(sentences) == 1 + len(objects)
        for o in objects:
            assert f"{o.size} {o.color} {o.shape}" in cap
        assert world.NUMBER_WORDS[len(objects)] in sentences[0]


def test_world_has_enough_variety_and_small_objects():
    rng = random.Random(1)
    objs = [o for _ in range(400) for o in world.sample_scene(rng, "train")]
    assert len({o.shape for o in objs}) >= 4 and len({o.color for o in objs}) >= 6
    assert {o.size for o in objs} == {"small", "large"}
    overlapping = sum(
        any(world._overlap(a.box, b.box) > 0 for b in world.sample_scene(random.Random(i), "train") if b != a)
        for i in range(50)
        for a in world.sample_scene(random.Random(i), "train")
    )
    assert overlapping > 0


def _pair_rate(split, n=3000):
    """P(partner present | first of a prior pair present)."""
    rng = random.Random(7)
    a, b = world.PRIOR_PAIRS[0]
    has_a = both = 0
    for _ in range(n):
        names = {(o.color, o.shape) for o in world.sample_scene(rng, split)}
        if a in names:
            has_a += 1
            both += b in names
    return both / has_a


def test_cooccurrence_prior_is_strong_in_train_and_broken_in_test():
    train, test = _pair_rate("train"), _pair_rate("test")
    assert train > 0.6
    assert test < train - 0.3


def test_one_attribute_variants_are_false_for_the_scene():
    rng = random.Random(2)
    for _ in range(30):
        objects = world.sample_scene(rng, "test")
        true = {world.object_sentence(o) for o in objects}
        for o in objects:
            variants = world.one_attribute_variants(o, objects)
            assert len(variants) >= 9
            assert not true & set(variants)
            for v in variants:
                diff = set(v[:-1].split()) ^ set(world.object_sentence(o)[:-1].split())
                assert 1 <= len(diff) <= 4  # one attribute, possibly a two-word position
    json.dumps(world.PAIR_PROB)
