"""HFDetector on tiny random-init GroundingDINO and OWLv2 models, loaded the real way.

The models are built offline from configs, saved with `save_pretrained` (model + processor)
and reloaded through `groundloop.models.load_detector(folder)`. Random weights mean the boxes
are meaningless; the tests check the plumbing a user would notice.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from groundloop.models import load_detector
from groundloop.models.detection import iou
from groundloop.models.hf_detectors import HFDetector, match_phrase

WORDS = ["red", "blue", "green", "circle", "square", "triangle", "star", "a", "the", "dog", "cat"]


def build_grounding_dino(folder: Path) -> None:
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessorPil,
        GroundingDinoProcessor,
        SwinConfig,
    )

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", *WORDS]
    tok_dir = folder / "tok"
    tok_dir.mkdir()
    (tok_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    # NB: BertTokenizer(vocab_file=...) silently ignores the file in transformers 5 (all
    # [UNK]); from_pretrained(folder) or BertTokenizer(vocab=dict) work.
    tokenizer = BertTokenizer.from_pretrained(str(tok_dir))
    image_processor = GroundingDinoImageProcessorPil(size={"shortest_edge": 64, "longest_edge": 64})
    processor = GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer)
    config = GroundingDinoConfig(
        backbone_config=SwinConfig(
            image_size=64,
            patch_size=4,
            embed_dim=8,
            depths=[1, 1, 1, 1],
            num_heads=[1, 1, 1, 1],
            window_size=2,
            out_indices=[2, 3, 4],
        ),
        text_config=BertConfig(
            vocab_size=len(vocab),
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=16,
            max_position_embeddings=64,
        ),
        d_model=32,  # GroupNorm(32, d_model) in the input projections
        encoder_layers=1,
        decoder_layers=2,  # 1 fails on the tied bbox heads
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_n_points=1,
        decoder_n_points=1,
        num_queries=12,
        max_text_len=32,
        num_feature_levels=3,  # no extra 1x1 level: GroupNorm fails on it at batch 1
    )
    GroundingDinoForObjectDetection(config).save_pretrained(folder)
    processor.save_pretrained(folder)


def build_owlv2(folder: Path) -> None:
    from transformers import (
        CLIPTokenizer,
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2ImageProcessorPil,
        Owlv2Processor,
    )

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    # A byte-level BPE vocabulary: single letters, word-final letters, and the merges that
    # build each word left to right ("r e" -> "re", "re d</w>" -> "red</w>").
    vocab = ["!", "<|startoftext|>", "<|endoftext|>", "."]
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab += [c, c + "</w>"]
    merges: list[str] = []
    for w in WORDS:
        syms = [*w[:-1], w[-1] + "</w>"]
        while len(syms) > 1:
            merges.append(f"{syms[0]} {syms[1]}")
            syms = [syms[0] + syms[1], *syms[2:]]
            if syms[0] not in vocab:
                vocab.append(syms[0])
    tok_dir = folder / "tok"
    tok_dir.mkdir()
    (tok_dir / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    merges_text = "#version: 0.2\n" + "\n".join(dict.fromkeys(merges)) + "\n"
    (tok_dir / "merges.txt").write_text(merges_text)
    # OWL pads queries with "!" (id 0): the model's query mask is input_ids[..., 0] > 0.
    tokenizer = CLIPTokenizer.from_pretrained(str(tok_dir), pad_token="!", model_max_length=8)
    assert tokenizer.convert_ids_to_tokens(tokenizer("red circle").input_ids)[1:3] == [
        "red</w>",
        "circle</w>",
    ]
    image_processor = Owlv2ImageProcessorPil(size={"height": 32, "width": 32})
    processor = Owlv2Processor(image_processor=image_processor, tokenizer=tokenizer)
    config = Owlv2Config(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=16,
            intermediate_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=8,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        ),
        vision_config=dict(
            hidden_size=16,
            intermediate_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=16,
    )
    Owlv2ForObjectDetection(config).save_pretrained(folder)
    processor.save_pretrained(folder)


BUILDERS = {"grounding-dino": build_grounding_dino, "owlv2": build_owlv2}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run ~100x slower with 2 intra-op threads on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def model_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp(request.param)
    BUILDERS[request.param](folder)
    return str(folder)


def images() -> list[Image.Image]:
    return [
        Image.new("RGB", (80, 50), "red"),
        Image.new("RGB", (40, 60), "blue"),
        Image.new("L", (48, 48), 128),  # grayscale gets converted
    ]


PHRASES = [["red circle", "blue square", "green star"], ["a dog"], ["the cat", "red circle"]]


def assert_valid(dets_per_image: list, phrases: list[list[str]]) -> None:
    assert len(dets_per_image) == len(phrases)
    for dets, query in zip(dets_per_image, phrases, strict=True):
        for d in dets:
            assert d.phrase in query
            x0, y0, x1, y1 = d.box
            assert 0.0 <= x0 <= x1 <= 1.0 and 0.0 <= y0 <= y1 <= 1.0, d.box
            assert 0.0 <= d.score <= 1.0


def test_loads_through_load_detector(model_dir: str) -> None:
    det = load_detector(model_dir, box_threshold=0.2, text_threshold=0.1, nms_iou=0.4)
    assert isinstance(det, HFDetector)
    assert (det.box_threshold, det.text_threshold, det.nms_iou) == (0.2, 0.1, 0.4)
    assert det.device.type == "cpu"


def test_threshold_zero_gives_valid_detections(model_dir: str) -> None:
    det = load_detector(model_dir, box_threshold=0.0, text_threshold=0.0)
    out = det.detect(images(), PHRASES)
    assert_valid(out, PHRASES)
    assert all(len(dets) > 0 for dets in out)


def test_threshold_above_one_gives_nothing(model_dir: str) -> None:
    det = load_detector(model_dir, box_threshold=1.01, text_threshold=0.0)
    assert det.detect(images(), PHRASES) == [[], [], []]


def test_nms_within_phrase(model_dir: str) -> None:
    loose = load_detector(model_dir, box_threshold=0.0, text_threshold=0.0, nms_iou=1.0)
    strict = load_detector(model_dir, box_threshold=0.0, text_threshold=0.0, nms_iou=0.3)
    all_dets, kept = loose.detect(images(), PHRASES), strict.detect(images(), PHRASES)
    for before, after in zip(all_dets, kept, strict=True):
        assert len(after) <= len(before)
        for i, a in enumerate(after):
            for b in after[i + 1 :]:
                if a.phrase == b.phrase:
                    assert iou(a.box, b.box) <= 0.3


def test_empty_phrases_and_single_image(model_dir: str) -> None:
    det = load_detector(model_dir, box_threshold=0.0, text_threshold=0.0)
    ims = images()
    out = det.detect(ims, [[], ["red circle"], ["  ", "."]])
    assert out[0] == [] and out[2] == []
    assert out[1] and {d.phrase for d in out[1]} == {"red circle"}
    assert det.detect([], []) == []
    # Duplicated and oddly written phrases come back as the caller wrote them.
    out = det.detect(ims[:1], [["Red Circle.", "red circle", "dog"]])
    assert_valid(out, [["Red Circle.", "dog"]])


def test_batching_keeps_each_images_phrases_and_boxes_with_that_image(model_dir: str) -> None:
    det = load_detector(model_dir, box_threshold=0.0, text_threshold=0.0, batch_size=2)
    ims = [Image.new("RGB", (64, 64), c) for c in ("red", "blue")]
    phrases = [["red circle", "blue square"], ["dog"]]
    batched = det.detect(ims, phrases)
    # The same batch in the other order gives every image exactly its own detections back.
    reverse = det.detect(ims[::-1], phrases[::-1])[::-1]
    for b, r in zip(batched, reverse, strict=True):
        assert [d.phrase for d in b] == [d.phrase for d in r]
        for db, dr in zip(b, r, strict=True):
            assert db.box == pytest.approx(dr.box, abs=1e-4)
            assert db.score == pytest.approx(dr.score, abs=1e-4)
    # One image at a time finds the same phrases. (Not the same boxes: this random-init model's
    # scores saturate at ~1.0, so its two-stage top-k query selection breaks ties differently
    # when the batch size changes the kernels' summation order.)
    single = [det.detect([im], [p])[0] for im, p in zip(ims, phrases, strict=True)]
    for b, s, p in zip(batched, single, phrases, strict=True):
        assert sorted(d.phrase for d in b) == sorted(d.phrase for d in s)
        assert {d.phrase for d in b} <= set(p)


def test_length_mismatch_raises(model_dir: str) -> None:
    det = load_detector(model_dir)
    with pytest.raises(ValueError, match="2 images and 1 phrase lists"):
        det.detect(images()[:2], [["red circle"]])


def test_match_phrase() -> None:
    cands = ["red circle", "blue square", "dog"]
    assert match_phrase("red circle", cands) == 0
    assert match_phrase("square", cands) == 1
    assert match_phrase("blue square . dog", cands) == 1
    assert match_phrase("red circle blue square", cands) == 0  # tie -> earlier in prompt
    assert match_phrase("cat", cands) is None
    assert match_phrase("", cands) is None
    assert match_phrase("dog", ["hot dog", "dog"]) == 1  # exact beats partial
