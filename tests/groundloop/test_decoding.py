"""The decoders on a scripted sampler and a scripted value function: which sentences each one
keeps, replaces and appends (plumbing: the real models run in tests/pipelines)."""

from collections import Counter

import pytest
from PIL import Image

from groundloop.vimar import decoding
from groundloop.vimar.decoding import Engines

IMG = Image.new("RGB", (8, 8))
GOOD = {
    "Intro.": 1.0,
    "A fine circle.": 2.0,
    "A fine square.": 2.0,
    "A better square.": 3.0,
    "A fine cross.": 2.0,
    "Extra triangle.": 1.5,
}


class ScriptedSampler:
    """Full captions by temperature; next sentences from a table keyed by the prefix."""

    def __init__(self, full: dict[float, str], nexts: dict[str, list[str]]) -> None:
        self.full, self.nexts, self.calls = full, nexts, Counter()

    def sample(self, images, texts, prefixes, temperatures, top_p=1.0, one_sentence=False):
        out = []
        for p, t in zip(prefixes, temperatures):
            if one_sentence:
                opts = self.nexts.get(p, [""])
                out.append(opts[self.calls[p] % len(opts)])
                self.calls[p] += 1
            else:
                out.append(self.full[t])
        return out


class ScriptedValue:
    def values(self, images, sentences):
        return [GOOD.get(s, -1.0) for s in sentences]


def test_vimar_replaces_exactly_the_weak_sentences_in_place():
    full = {
        0.1: "Intro. A fake circle. A fine square. A fake cross.",
        0.5: "Intro. A fake blob. A fake blob2. A fake blob3.",
    }
    nexts = {
        "Intro.": ["A fine circle."],  # alternative for sentence 2
        "Intro. A fake circle. A fine square.": ["A fine cross."],  # alternative for sentence 4
        "Intro. A fine circle. A fine square. A fine cross.": [""],
    }  # then the caption ends
    eng = Engines(ScriptedSampler(full, nexts), value=ScriptedValue())
    out = decoding.vimar(eng, [IMG], temperatures=[0.1, 0.5], k=1, threshold=0.0)
    # stage 1 keeps the 0.1 caption (mean V -0.25 vs -0.5); stage 2 swaps the two fakes only
    assert out == ["Intro. A fine circle. A fine square. A fine cross."]
    assert eng.stats["generate_calls"] == 3  # stage 1, in-place alternatives, one append step


def test_vimar_keeps_a_weak_sentence_when_no_alternative_is_better():
    full = {0.1: "Intro. A fake circle."}
    eng = Engines(ScriptedSampler(full, {"Intro.": ["A worse circle."]}), value=ScriptedValue())
    assert decoding.vimar(eng, [IMG], [0.1], k=1, threshold=0.0) == ["Intro. A fake circle."]


def test_vimar_append_mode_never_replaces_but_appends_worthy_sentences():
    full = {0.1: "Intro. A fake circle."}
    nexts = {
        "Intro.": ["A fine circle."],
        "Intro. A fake circle.": ["Extra triangle."],
        "Intro. A fake circle. Extra triangle.": [""],
    }
    eng = Engines(ScriptedSampler(full, nexts), value=ScriptedValue())
    out = decoding.vimar(eng, [IMG], [0.1], k=1, threshold=0.0, refine="append")
    assert out == ["Intro. A fake circle. Extra triangle."]


def test_vimar_does_not_append_a_sentence_below_the_threshold():
    full = {0.1: "Intro. A fine circle."}
    nexts = {"Intro. A fine circle.": ["A fake blob."]}
    eng = Engines(ScriptedSampler(full, nexts), value=ScriptedValue())
    assert decoding.vimar(eng, [IMG], [0.1], k=1, threshold=0.0) == ["Intro. A fine circle."]


def test_visvm_takes_the_best_valued_sentence_each_step_and_stops_when_most_candidates_end():
    nexts = {
        "": ["Intro."],
        "Intro.": ["A fake circle.", "A fine square."],
        "Intro. A fine square.": ["A better square.", "A fine square."],
        "Intro. A fine square. A better square.": ["", ""],
    }
    eng = Engines(ScriptedSampler({}, nexts), value=ScriptedValue())
    out = decoding.sentence_search(eng, [IMG], temperatures=[0.3, 0.7], k=1, scorer="value")
    # a repeated sentence is never chosen; the last step's candidates both end the caption
    assert out == ["Intro. A fine square. A better square."]
    assert eng.stats["generate_calls"] == 4 and eng.stats["valued_states"] == 5


def test_best_of_n_picks_the_highest_mean_clip_caption():
    class Clip:
        def score(self, images, texts):
            return [GOOD.get(t, -1.0) for t in texts]

    full = {0.2: "Intro. A fake circle.", 0.8: "Intro. A fine circle."}
    eng = Engines(ScriptedSampler(full, {}), clip=Clip())
    assert decoding.best_of_n(eng, [IMG, IMG], [0.2, 0.8], k=1) == ["Intro. A fine circle."] * 2


class ScriptedJudge:
    """Prefers the caption with more "fine" words; counts the pairs it was asked about."""

    def __init__(self) -> None:
        self.pairs = 0

    def prefer(self, images, questions, a, b):
        self.pairs += len(a)
        return [1.0 if x.count("fine") > y.count("fine") else 0.0 for x, y in zip(a, b)]


def test_genrm_best_of_n_keeps_the_knockout_winner_for_every_image():
    full = {
        0.1: "A fake circle.",
        0.3: "A fine circle. A fine square.",
        0.5: "A fine circle.",
        0.7: "A fake blob. A fake cross.",
    }
    judge = ScriptedJudge()
    eng = Engines(ScriptedSampler(full, {}), judge=judge)
    out = decoding.decode(
        "genrm_bon", eng, [IMG, IMG, IMG], decoding.DecodeSettings(temperatures=(0.1, 0.3, 0.5, 0.7), k=1)
    )
    assert out == ["A fine circle. A fine square."] * 3
    # 4 candidates per image: 3 comparisons each, every tournament round batched across images
    assert judge.pairs == 9 and eng.stats["judge_calls"] == 2


def test_parse_spec_gives_one_decoder_its_own_settings_and_names_what_is_wrong():
    from groundloop.vimar.decoding import DecodeSettings, parse_spec

    base = DecodeSettings(k=6)
    assert parse_spec("visvm", base) == ("visvm", base)
    name, s = parse_spec("vimar@k=2,refine=append,threshold=0.3", base)
    assert name == "vimar" and (s.k, s.refine, s.threshold) == (2, "append", 0.3)
    assert s.temperatures == base.temperatures and base.k == 6  # the rest untouched, base unchanged
    with pytest.raises(ValueError, match="unknown decoder 'beam'"):
        parse_spec("beam@k=2", base)
    with pytest.raises(ValueError, match="bad decoder setting 'top_k=3'"):
        parse_spec("vimar@top_k=3", base)
    with pytest.raises(ValueError, match="bad value for k"):
        parse_spec("vimar@k=two", base)
    with pytest.raises(ValueError, match="bad value for refine"):
        parse_spec("vimar@refine=sideways", base)
