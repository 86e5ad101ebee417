"""Caption metrics (pycocoevalcap) on hand-made examples, and the most-common-caption baseline."""

import pytest

from kaleido_tf.evaluators.caption import ALL_METRICS, METRICS, format_caption_report, ptb_tokenize, score_captions
from kaleido_tf.tasks.caption_task import most_common_caption

REFERENCES = [
    ["a red cotton dress with long sleeves"],
    ["a blue silk shirt with a chest pocket"],
    ["black leather ankle boots with a buckle"],
    ["women's maxi dress in navy blue, white polka dot print"],
]


@pytest.fixture(scope="module")
def perfect():
    return score_captions([r[0] for r in REFERENCES], REFERENCES, metrics=ALL_METRICS)


def test_ptb_tokenization_lowercases_and_drops_punctuation():
    assert ptb_tokenize(["A Red, cotton DRESS.", "", "women's maxi"]) == ["a red cotton dress", "", "women 's maxi"]


def test_perfect_captions_score_high(perfect):
    for n in range(1, 5):
        assert perfect[f"bleu_{n}"] == pytest.approx(100.0, abs=1e-3)
    assert perfect["meteor"] == pytest.approx(100.0, abs=1e-3)
    assert perfect["rouge_l"] == pytest.approx(100.0, abs=1e-6)
    assert perfect["cider"] > 500


def test_disjoint_captions_score_about_zero():
    scores = score_captions(["seven", "orbit telescope nebula", "", "quartz granite"], REFERENCES)
    assert list(scores) == list(METRICS)
    for name, value in scores.items():
        assert value == pytest.approx(0.0, abs=1e-3), name


def test_partial_captions_score_in_between(perfect):
    hypotheses = {
        "a": "a red dress with long sleeves",
        "b": "a blue shirt with a pocket",
        "c": "black boots",
        "d": "a navy blue maxi dress with white polka dots",
    }
    references = dict(zip("abcd", REFERENCES))
    scores = score_captions(hypotheses, references, metrics=ALL_METRICS)
    for name in ALL_METRICS:
        assert 0.0 < scores[name] < perfect[name], name
    # Corpus-level BLEU: the clipped n-gram counts add up over the corpus, so "black boots" (no 3-gram) does
    # not zero BLEU-4, and the score differs from the mean of the per-caption scores.
    sentence = [score_captions([hypotheses[k]], [references[k]], metrics=("bleu_4",))["bleu_4"] for k in "abcd"]
    assert scores["bleu_4"] != pytest.approx(sum(sentence) / 4, abs=1e-3)
    assert "METEOR:" in format_caption_report(scores, count=4)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="2 hypotheses but 1 reference"):
        score_captions(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="references 0 must be a non-empty list"):
        score_captions(["a"], ["a"])
    with pytest.raises(ValueError, match="only in references"):
        score_captions({"x": "a"}, {"x": ["a"], "y": ["b"]})
    with pytest.raises(ValueError, match="unknown caption metric"):
        score_captions(["a"], [["a"]], metrics=("spice",))


def test_most_common_caption():
    assert most_common_caption(["b", "a", "a", "b", "c"]) == "b"  # tie: the first seen
    assert most_common_caption(["x", "y", "y"]) == "y"
    with pytest.raises(ValueError):
        most_common_caption([])
