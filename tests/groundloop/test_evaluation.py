"""Plumbing of inference-time grounding with a scripted sampler and detector (fakes on purpose:
this is about what flows where, not about model quality)."""

from PIL import Image

from groundloop import prompts
from groundloop.eval import captioning
from groundloop.models.detection import Detection
from groundloop.vocab.shapes import ShapesVocabulary

SHAPES = ShapesVocabulary()


class ScriptedSampler:
    def __init__(self):
        self.calls = []

    def generate(self, images, texts, n=1, temperature=0.0, top_p=1.0):
        self.calls.append((list(texts), n, temperature))
        if temperature > 0:
            return [["A small blue square is at the top.", "A red circle."][:n] for _ in texts]
        return [["A large red triangle is at the left."] * n for _ in texts]


class OnlyRedCircle:
    def detect(self, images, phrases):
        return [[Detection(p, (0.1, 0.1, 0.3, 0.3), 0.9) for p in ps if p == "red circle"] for ps in phrases]


def test_union_phrases_keeps_first_mention_order():
    assert captioning.union_phrases(["a red circle and a blue box", "a blue square, a green cross"], SHAPES) == [
        "red circle",
        "blue square",
        "green cross",
    ]


def test_grounded_recaption_grounds_all_samples_and_prompts_with_context():
    sampler = ScriptedSampler()
    img = Image.new("RGB", (8, 8))
    groundings, guided = captioning.grounded_recaption(
        sampler, OnlyRedCircle(), [img, img], ["A red triangle."] * 2, SHAPES, batch_size=1, extra_samples=2
    )
    # the greedy prior's phrase (red triangle) is rejected; a sample's phrase (red circle) is verified
    assert groundings == ["red circle [0.10, 0.10, 0.30, 0.30]"] * 2
    last_texts = sampler.calls[-1][0]
    assert last_texts == [prompts.grounded_prompt(groundings[1])]
    assert guided == ["A large red triangle is at the left."] * 2
    assert any(n == 2 and t > 0 for _, n, t in sampler.calls)


def test_without_extra_samples_only_the_prior_is_grounded():
    sampler = ScriptedSampler()
    img = Image.new("RGB", (8, 8))
    groundings, _ = captioning.grounded_recaption(sampler, OnlyRedCircle(), [img], ["A blue square."], SHAPES)
    assert groundings == [""]
    assert all(t == 0.0 for _, _, t in sampler.calls)
