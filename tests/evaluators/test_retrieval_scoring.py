"""Retrieval result files and scoring: hand-computed Rank@K / accuracy / AUC, formats, errors."""

import itertools
import math

import numpy as np
import pytest

from kaleido_tf.evaluators.retrieval import (
    METRIC_KEYS,
    check_query_type,
    format_retrieval_report,
    roc_auc,
    score_retrieval,
    score_retrieval_arrays,
)
from kaleido_tf.evaluators.retrieval_format import (
    RetrievalRecord,
    RetrievalResults,
    RetrievalResultWriter,
    read_retrieval_results,
)

SEP = "\001"
EPS = 1e-5


def _line(text_ids, image_ids, prod_ids, labels, logits):
    return SEP.join([str(text_ids), str(image_ids), str(prod_ids), str(labels), str(logits)]) + "\n"


def _write(path, lines):
    path.write_text("".join(lines), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------
# 3 queries x 4 candidates, split over two batch lines, with known ranks.
#   query tA: match logits 0.9 0.1 0.5 0.3, positive = 0.5 -> rank 2
#   query tB: match logits 0.2 0.8 0.4 0.6, positive = 0.8 -> rank 1
#   query tC: match logits 0.7 0.6 0.65 0.1, positive = 0.1 -> rank 4
# "no match" logits are chosen so that argmax is right for 9 of the 12 pairs.
# --------------------------------------------------------------------------------------------------

HAND_PAIRS = [
    # text, image, label, [no-match logit, match logit]
    ("tA", "i1", 0, [0.0, 0.9]),  # wrong (predicts 1)
    ("tA", "i2", 0, [0.5, 0.1]),  # right
    ("tA", "i3", 1, [0.0, 0.5]),  # right
    ("tA", "i4", 0, [0.9, 0.3]),  # right
    ("tB", "i5", 0, [0.5, 0.2]),  # right
    ("tB", "i6", 1, [0.1, 0.8]),  # right
    ("tC", "i1", 0, [0.0, 0.7]),  # wrong
    ("tB", "i7", 0, [0.9, 0.4]),  # right
    ("tB", "i8", 0, [0.9, 0.6]),  # right
    ("tC", "i2", 0, [0.9, 0.6]),  # right
    ("tC", "i3", 0, [0.9, 0.65]),  # right
    ("tC", "i4", 1, [0.5, 0.1]),  # wrong
]


def _hand_lines(style="py3"):
    lines = []
    for chunk in (HAND_PAIRS[:7], HAND_PAIRS[7:]):
        text = [p[0] for p in chunk]
        image = [p[1] for p in chunk]
        prod = [p[1] + "_img" for p in chunk]
        labels = [[p[2]] for p in chunk]
        logits = [x for p in chunk for x in p[3]]
        if style == "py3":
            lines.append(_line(text, image, prod, labels, logits))
        elif style == "bytes":  # bytes ids, numpy scalar reprs, flat labels
            lines.append(
                SEP.join(
                    [
                        str([t.encode() for t in text]),
                        str([t.encode() for t in image]),
                        str([t.encode() for t in prod]),
                        "[" + ", ".join(f"np.int64({p[2]})" for p in chunk) + "]",
                        "[" + ", ".join(f"np.float32({x})" for x in logits) + "]",
                    ]
                )
                + "\n"
            )
        elif style == "py2":  # unicode prefixes, Python 2 longs, CRLF line ends
            lines.append(
                SEP.join(
                    [
                        "[" + ", ".join(f"u'{t}'" for t in text) + "]",
                        str(image),
                        str(prod),
                        "[" + ", ".join(f"[{p[2]}L]" for p in chunk) + "]",
                        str(logits),
                    ]
                )
                + "\r\n"
            )
    return lines


def test_hand_case_txt2img(tmp_path):
    path = _write(tmp_path / "t2i.txt", _hand_lines())
    metrics = score_retrieval(read_retrieval_results(path, progress=False), type="txt2img")
    assert list(metrics) == list(METRIC_KEYS)
    assert metrics["pairs"] == 12 and metrics["queries"] == 3
    assert metrics["accuracy"] == pytest.approx(9 / (12 + EPS), rel=1e-12)
    assert metrics["rank@1"] == pytest.approx(1 / (3 + EPS), rel=1e-12)  # only tB
    assert metrics["rank@5"] == pytest.approx(3 / (3 + EPS), rel=1e-12)
    assert metrics["rank@10"] == pytest.approx(3 / (3 + EPS), rel=1e-12)
    assert metrics["rank@100"] == pytest.approx(3 / (3 + EPS), rel=1e-12)
    # AUC by hand: positives 0.5, 0.8, 0.1; negatives 0.9 0.1 0.3 0.2 0.7 0.4 0.6 0.6 0.65.
    # 0.5 beats 0.1 0.3 0.2 0.4 = 4; 0.8 beats all but 0.9 = 8; 0.1 ties 0.1 = 0.5 -> 12.5 / 27.
    assert metrics["auc"] == pytest.approx(12.5 / 27, rel=1e-12)


def test_hand_case_img2txt_groups_by_image(tmp_path):
    path = _write(tmp_path / "i2t.txt", _hand_lines())
    metrics = score_retrieval(read_retrieval_results(path, progress=False), type="img2txt")
    # Image queries: i1 (tA 0.9 neg, tC 0.7 neg), i2 (tA 0.1 neg, tC 0.6 neg), i3 (tA 0.5 pos,
    # tC 0.65 neg -> rank 2), i4 (tA 0.3 neg, tC 0.1 pos -> rank 2), i5..i8 (tB, one each; i6 pos).
    assert metrics["queries"] == 8
    assert metrics["rank@1"] == pytest.approx(1 / (8 + EPS), rel=1e-12)
    assert metrics["rank@5"] == pytest.approx(3 / (8 + EPS), rel=1e-12)
    assert metrics["accuracy"] == pytest.approx(9 / (12 + EPS), rel=1e-12)


def test_python2_and_bytes_files_give_the_same_numbers(tmp_path):
    results = {
        style: read_retrieval_results(_write(tmp_path / f"{style}.txt", _hand_lines(style)), progress=False)
        for style in ("py3", "bytes", "py2")
    }
    for style in ("bytes", "py2"):
        np.testing.assert_array_equal(results[style].text_prod_ids, results["py3"].text_prod_ids)
        np.testing.assert_array_equal(results[style].labels, results["py3"].labels)
        np.testing.assert_array_equal(results[style].logits, results["py3"].logits)
        for kind in ("txt2img", "img2txt"):
            assert score_retrieval(results[style], kind) == score_retrieval(results["py3"], kind)
    assert results["bytes"].text_prod_ids[0] == "tA"  # bytes ids decoded, not "b'tA'"


def test_rank_at_k_boundaries():
    # One query per case; each positive sits at a chosen 1-based rank among many candidates.
    positive_ranks = {"q1": 1, "q2": 3, "q3": 8, "q4": 50, "q5": 105, "q6": None}
    sizes = {"q1": 4, "q2": 4, "q3": 12, "q4": 120, "q5": 110, "q6": 3}
    query_ids, labels, logits = [], [], []
    for q, size in sizes.items():
        scores = np.linspace(10.0, 0.0, size)  # distinct, descending
        for r, s in enumerate(scores, start=1):
            query_ids.append(q)
            labels.append(int(r == positive_ranks[q]))
            logits.append([0.0, s])
    order = np.random.default_rng(3).permutation(len(labels))  # file order must not matter
    metrics = score_retrieval_arrays(np.array(query_ids)[order], np.array(labels)[order], np.array(logits)[order])
    assert metrics["queries"] == 6
    assert metrics["rank@1"] == pytest.approx(1 / (6 + EPS))
    assert metrics["rank@5"] == pytest.approx(2 / (6 + EPS))
    assert metrics["rank@10"] == pytest.approx(3 / (6 + EPS))
    assert metrics["rank@100"] == pytest.approx(4 / (6 + EPS))


def test_ties_keep_file_order():
    # The positive ties with a negative: whichever was written first ranks first.
    positive_first = score_retrieval_arrays(["q", "q", "q"], [1, 0, 0], [[0, 0.5], [0, 0.5], [0, 0.1]])
    positive_second = score_retrieval_arrays(["q", "q", "q"], [0, 1, 0], [[0, 0.5], [0, 0.5], [0, 0.1]])
    assert positive_first["rank@1"] == pytest.approx(1 / (1 + EPS))
    assert positive_second["rank@1"] == 0.0
    assert positive_second["rank@5"] == pytest.approx(1 / (1 + EPS))
    # Logits are compared as float32, so differences below float32 resolution are ties too.
    float32_tie = score_retrieval_arrays(["q", "q"], [1, 0], np.array([[0, 1.0], [0, 1.0 + 1e-9]]))
    assert float32_tie["rank@1"] == pytest.approx(1 / (1 + EPS))
    assert float32_tie["auc"] == pytest.approx(0.5)
    # Equal logits predict class 0 (first argmax).
    tie_acc = score_retrieval_arrays(["q", "q"], [0, 1], [[0.2, 0.2], [0.2, 0.2]])
    assert tie_acc["accuracy"] == pytest.approx(1 / (2 + EPS))


def _brute_force_auc(labels, scores):
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def _brute_force_rank(query_ids, labels, scores, ks=(1, 5, 10, 100)):
    groups = {}
    for q, y, s in zip(query_ids, labels, scores):
        groups.setdefault(q, []).append((s, y))
    out = {}
    for k in ks:
        found = 0
        for docs in groups.values():
            ranked = sorted(docs, key=lambda d: d[0], reverse=True)  # stable
            found += any(y for _, y in ranked[:k])
        out[k] = found / (len(groups) + EPS)
    return out


def test_auc_with_ties_by_hand():
    labels = [1, 0, 1, 0, 1]
    scores = [0.8, 0.8, 0.3, 0.1, 0.3]
    # pos vs neg: 0.8~0.8 half, 0.8>0.1, 0.3<0.8, 0.3>0.1, 0.3<0.8, 0.3>0.1 -> 3.5 / 6
    assert roc_auc(labels, scores) == pytest.approx(3.5 / 6)
    assert roc_auc([1, 1, 0, 0], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.5)
    assert roc_auc([1, 0], [0.0, 1.0]) == 0.0
    assert math.isnan(roc_auc([1, 1], [0.3, 0.2]))


def test_random_cases_match_brute_force():
    rng = np.random.default_rng(7)
    for trial in range(20):
        n = int(rng.integers(2, 60))
        query_ids = rng.integers(0, 6, n).astype(str)
        labels = rng.integers(0, 2, n)
        labels[0], labels[1] = 0, 1
        logits = rng.integers(-3, 4, size=(n, 2)).astype(np.float32) / 2  # many ties
        metrics = score_retrieval_arrays(query_ids, labels, logits)
        assert metrics["auc"] == pytest.approx(_brute_force_auc(labels, logits[:, 1]), abs=1e-12), trial
        expected = _brute_force_rank(query_ids, labels, logits[:, 1])
        for k, value in expected.items():
            assert metrics[f"rank@{k}"] == pytest.approx(value, abs=1e-12), (trial, k)
        correct = int((np.argmax(logits, axis=1) == labels).sum())
        assert metrics["accuracy"] == pytest.approx(correct / (n + EPS), abs=1e-12)


def test_writer_round_trip_and_format(tmp_path):
    path = tmp_path / "out" / "results.txt"
    with RetrievalResultWriter(path) as writer:
        writer.write_batch(
            text_prod_ids=np.array([b"t1", b"t1"]),
            image_prod_ids=["i1", "i2"],
            prod_img_ids=np.array([["p1"], ["p2"]]),
            labels=np.array([[1], [0]]),
            nsp_logits=np.array([[0.25, 0.5], [1.5, -2.0]], dtype=np.float32),
        )
        writer.write_batch(
            text_prod_ids=["it's"], image_prod_ids=["i\x01\n"], prod_img_ids=["p3"], labels=[1], nsp_logits=[[0.1, 0.2]]
        )
        assert not path.exists()  # only the temporary file exists until close
    text = path.read_text(encoding="utf-8")
    first = text.splitlines()[0]
    assert first == SEP.join(["['t1', 't1']", "['i1', 'i2']", "['p1', 'p2']", "[[1], [0]]", "[0.25, 0.5, 1.5, -2.0]"])
    assert text.count("\n") == 2 and writer.pairs == 3 and writer.batches == 2
    results = read_retrieval_results(path, progress=False)
    assert results.text_prod_ids.tolist() == ["t1", "t1", "it's"]
    assert results.image_prod_ids.tolist() == ["i1", "i2", "i\x01\n"]
    np.testing.assert_array_equal(results.labels, [1, 0, 1])
    np.testing.assert_array_equal(results.logits, np.array([[0.25, 0.5], [1.5, -2.0], [0.1, 0.2]], dtype=np.float32))
    records = list(results.records())
    assert records[2] == RetrievalRecord("it's", "i\x01\n", "p3", 1, records[2].logits)
    assert score_retrieval(records, "txt2img") == score_retrieval(results, "txt2img")


def test_writer_discards_output_on_error(tmp_path):
    path = tmp_path / "results.txt"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with RetrievalResultWriter(path) as writer:
            writer.write_batch(["t"], ["i"], ["p"], [1], [0.0, 1.0])
            raise RuntimeError("boom")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.txt"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(labels=[1, 0], nsp_logits=[0, 1, 1, 0]), "labels hold 2 values for 1 pairs"),
        (dict(labels=[2], nsp_logits=[0, 1]), "labels must be 0 or 1"),
        (dict(labels=[1], nsp_logits=[0, 1, 2]), "nsp_logits hold 3 values for 1 pairs"),
    ],
)
def test_writer_rejects_bad_batches(tmp_path, kwargs, message):
    writer = RetrievalResultWriter(tmp_path / "r.txt")
    with pytest.raises(ValueError, match=message):
        writer.write_batch(text_prod_ids=["t"], image_prod_ids=["i"], prod_img_ids=["p"], **kwargs)
    writer.abort()
    assert list(tmp_path.iterdir()) == []


VALID = _line(["t1", "t2"], ["i1", "i2"], ["p1", "p2"], [1, 0], [0.1, 0.9, 0.8, 0.2])


@pytest.mark.parametrize(
    "bad, message",
    [
        ("['t1']\001['i1']\001['p1']\001[1]\n", "expected 5 fields"),
        ("['t1']\001['i1']\001['p1']\001[1]\001[0.1, 0.2]\001[3]\n", "found 6"),
        ("['t1', 't2']\001['i1']\001['p1', 'p2']\001[1, 0]\001[0.1, 0.2, 0.3, 0.4]\n", "lists of different lengths"),
        ("['t1']\001['i1']\001['p1']\001[1]\001[0.1, 0.2, 0.3]\n", "3 logits for 1 ids"),
        ("['t1']\001['i1']\001['p1']\001[1]\001[0.1, zz]\n", "field logits"),
        ("['t1]\001['i1']\001['p1']\001[1]\001[0.1, 0.2]\n", "field text_prod_id is not a Python literal"),
        ("['t1']\001['i1']\001['p1']\001[2]\001[0.1, 0.2]\n", "labels item 0 must be 0 or 1"),
        ("['t1']\001['i1']\001['p1']\001[1]\001[nan, 0.2]\n", "not a finite float32"),
        ("['t1']\001['i1']\001['p1']\001[1]\001[1e39, 0.2]\n", "not a finite float32"),
        ("['t1']\001['i1']\001['p1']\001[1]\001['a', 0.2]\n", "must be a number"),
        ("['t1']\001[1.5]\001['p1']\001[1]\001[0.1, 0.2]\n", "image_prod_id item 0 must be a string id"),
        ("'t1'\001['i1']\001['p1']\001[1]\001[0.1, 0.2]\n", "must be a list, found str"),
        ("['t1']\001['i1']\001['p1']\001[1]\001__import__('os')\n", "unparsable value"),
        ("['t1']\001['i1']\001['p1']\001\001[0.1, 0.2]\n", "field labels is empty"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, bad, message):
    path = _write(tmp_path / "bad.txt", [VALID, "\n", bad])
    with pytest.raises(ValueError, match=message) as info:
        read_retrieval_results(path, progress=False)
    assert f"{path}:3:" in str(info.value)


def test_invalid_utf8_names_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(VALID.encode() + b"['\xff']\x01['i']\x01['p']\x01[1]\x01[0.0, 1.0]\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: not valid UTF-8"):
        read_retrieval_results(path, progress=False)


def test_several_files_are_concatenated(tmp_path):
    lines = _hand_lines()
    a = _write(tmp_path / "a.txt", lines[:1])
    b = _write(tmp_path / "b.txt", lines[1:])
    both = read_retrieval_results([a, b], progress=False)
    one = read_retrieval_results(_write(tmp_path / "c.txt", lines), progress=False)
    assert score_retrieval(both, "txt2img") == score_retrieval(one, "txt2img")


def test_empty_file_and_single_class(tmp_path):
    empty = read_retrieval_results(_write(tmp_path / "e.txt", []), progress=False)
    metrics = score_retrieval(empty, "txt2img")
    assert metrics["pairs"] == 0 and metrics["queries"] == 0 and metrics["accuracy"] == 0.0
    assert math.isnan(metrics["auc"])
    report = format_retrieval_report(metrics)
    assert "AUC: n/a" in report


def test_score_arguments_are_checked():
    results = RetrievalResults.from_records([("t", "i", "p", 1, (0.0, 1.0))])
    with pytest.raises(ValueError, match="retrieval type must be one of"):
        score_retrieval(results, "text2image")
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        score_retrieval_arrays(["q"], [3], [[0.0, 1.0]])
    with pytest.raises(ValueError, match="do not match 2 pairs"):
        score_retrieval_arrays(["q", "q"], [1, 0], [[0.0, 1.0, 2.0]])
    with pytest.raises(ValueError, match="NaN or infinite"):
        score_retrieval_arrays(["q"], [1], [[0.0, np.nan]])


def test_report_lists_each_metric_on_its_own_line():
    metrics = score_retrieval_arrays(["a", "a", "b", "b"], [1, 0, 0, 1], [[0, 2.0], [0, 1.0], [0, 3.0], [0, 1.0]])
    lines = format_retrieval_report(metrics).splitlines()
    assert lines[1:] == [
        f"Accuracy: {2 / (4 + EPS):.6f}",
        f"Rank@1: {1 / (2 + EPS):.6f}",
        "Rank@5, Rank@10, Rank@100: not shown (a query has only 2 candidates)",
        "AUC: 0.375000",  # positives 2.0, 1.0 vs negatives 1.0, 3.0: (1 + 0 + 0.5 + 0) / 4
    ]
    assert lines[0] == "Queries: 2  Pairs: 4  Candidates per query: 2"


def test_report_shows_rank_at_k_only_below_the_fewest_candidates():
    # query a: 21 candidates, query b: 7; the positive of b is last, that of a first
    ids = ["a"] * 21 + ["b"] * 7
    labels = [1] + [0] * 20 + [0] * 6 + [1]
    logits = [[0.0, 1.0]] + [[0.0, 0.0]] * 20 + [[0.0, 1.0]] * 6 + [[0.0, 0.5]]
    metrics = score_retrieval_arrays(ids, labels, logits)
    assert (metrics["min_candidates"], metrics["max_candidates"]) == (7, 21)
    assert metrics["rank@5"] == pytest.approx(1 / (2 + EPS)) and metrics["rank@10"] == pytest.approx(2 / (2 + EPS))
    lines = format_retrieval_report(metrics).splitlines()
    assert lines[0] == "Queries: 2  Pairs: 28  Candidates per query: 7 to 21"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "Accuracy",
        "Rank@1",
        "Rank@5",
        "Rank@10, Rank@100",
        "AUC",
    ]
    assert lines[4] == "Rank@10, Rank@100: not shown (a query has only 7 candidates)"


def test_results_of_the_other_direction_are_refused():
    # two txt2img queries t1, t2 with 3 image candidates each; images repeat across the queries
    results = RetrievalResults.from_records(
        [
            RetrievalRecord("t1", "i1", "i1_0", 1, (0.0, 1.0)),
            RetrievalRecord("t1", "i2", "i2_0", 0, (0.0, 0.5)),
            RetrievalRecord("t1", "i3", "i3_0", 0, (0.0, 0.2)),
            RetrievalRecord("t2", "i2", "i2_0", 1, (0.0, 1.0)),
            RetrievalRecord("t2", "i1", "i1_0", 0, (0.0, 0.1)),
            RetrievalRecord("t2", "i4", "i4_0", 0, (0.0, 0.3)),
        ]
    )
    check_query_type(results, "txt2img")  # each text query has one positive
    with pytest.raises(
        ValueError,
        match=r"^these are txt2img results .* not img2txt: keyed by image_prod_id, "
        r"2 of 4 queries .* use --type txt2img",
    ):
        check_query_type(results, "img2txt")
