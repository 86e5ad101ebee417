"""The full-gallery protocol on hand-built similarity matrices with known ranks."""

import numpy as np
import pytest

from kaleido_tf.evaluators.retrieval_full import (
    candidate_order,
    format_full_report,
    full_gallery_metrics,
    ranks_from_scores,
    recall_at,
    rerank_ranks,
)


def test_ranks_of_a_hand_built_matrix():
    scores = np.array(
        [
            [0.9, 0.1, 0.2, 0.3],  # own 0.9: rank 1
            [0.5, 0.4, 0.6, 0.1],  # own 0.4: two above -> 3
            [0.2, 0.3, 0.1, 0.0],  # own 0.1: 0.2, 0.3 above -> 3
            [0.1, 0.2, 0.3, 0.4],  # rank 1
        ]
    )
    assert ranks_from_scores(scores).tolist() == [1, 3, 3, 1]
    ranks = ranks_from_scores(scores)
    assert recall_at(ranks, 1) == 0.5 and recall_at(ranks, 3) == 1.0 and recall_at(ranks, 2) == 0.5


def test_ties_count_against_the_query():
    scores = np.array([[0.5, 0.5, 0.5], [0.7, 0.7, 0.1], [0.0, 0.0, 0.0]])
    # query 0: two others tie with it -> 3; query 1: one other ties -> 2; constant row -> the last rank, 3
    assert ranks_from_scores(scores).tolist() == [3, 2, 3]
    order = candidate_order(scores)
    assert order.tolist() == [[1, 2, 0], [0, 1, 2], [0, 1, 2]]  # the own item after its equals


def test_rerank_moves_only_candidates_within_k():
    itc = np.array(
        [
            [0.5, 0.9, 0.8, 0.1],  # own (col 0) is ITC rank 3
            [0.9, 0.2, 0.8, 0.7],  # own (col 1) is ITC rank 4
        ]
    )
    itm = np.array([[0.99, 0.1, 0.2, 0.0], [0.0, 0.99, 0.5, 0.1]])
    # k = 3: query 0's own item is a candidate and ITM puts it first; query 1's is not: it keeps rank 4
    assert rerank_ranks(itc, itm, 3).tolist() == [1, 4]
    # k = 4: both re-ranked
    assert rerank_ranks(itc, itm, 4).tolist() == [1, 1]
    # k = 2: query 0's own item (ITC rank 3) is not re-ranked
    assert rerank_ranks(itc, itm, 2).tolist() == [3, 4]
    # a callable scorer gives the same ranks and is asked only for the candidates
    asked = []

    def pair_scores(q, g):
        asked.append(len(q))
        return itm[q, g]

    assert rerank_ranks(itc, pair_scores, 3).tolist() == [1, 4] and asked == [6]


def _vectors(similar):
    """Unit vectors with text i closest to image perm[i]."""
    return similar / np.linalg.norm(similar, axis=1, keepdims=True)


def test_full_gallery_metrics_exact_values_and_keys():
    n = 20
    rng = np.random.default_rng(0)
    images = _vectors(rng.normal(size=(n, 8)))
    texts = images.copy()
    texts[:5] = images[[1, 2, 3, 4, 0]]  # texts 0..4 are the images of others: ITC misses them
    truth = np.eye(n)

    def oracle(t, i):  # an ITM head that knows the truth
        return truth[t, i]

    calls = []

    def counted(t, i):
        calls.append(len(t))
        return oracle(t, i)

    m = full_gallery_metrics(texts, images, counted, ks=(16, 64), exhaustive_limit=100)
    assert m["retrieval/full/gallery_size"] == 20.0
    assert m["retrieval/full/chance/R@1"] == pytest.approx(1 / 20) and m["retrieval/full/chance/R@10"] == 0.5
    assert m["retrieval/full/chance/median_rank"] == 10.5
    assert m["retrieval/full/txt2img/itc/R@1"] == 0.75  # 15 of 20 texts find their own image first
    assert m["retrieval/full/img2txt/itc/R@1"] == 0.75
    assert m["retrieval/full/txt2img/itm/R@1"] == 1.0 and m["retrieval/full/img2txt/itm/median_rank"] == 1.0
    assert "retrieval/full/txt2img/itc+itm@64/R@1" not in m  # k >= N is exhaustive ITM
    assert calls == [400]  # one call, every pair once (exhaustive; the re-ranking reuses it)
    itc_ranks = ranks_from_scores(texts @ images.T)
    expected = np.where(itc_ranks <= 16, 1, itc_ranks)
    assert m["retrieval/full/txt2img/itc+itm@16/R@1"] == recall_at(expected, 1)
    assert m["retrieval/full/txt2img/itc+itm@16/itm_passes_per_query"] == 16.0

    calls.clear()
    m2 = full_gallery_metrics(texts, images, counted, ks=(4,), exhaustive_limit=10)
    assert "retrieval/full/txt2img/itm/R@1" not in m2
    assert calls and calls[0] <= 2 * n * 4  # only the candidates of both directions
    assert m2["retrieval/full/txt2img/itc+itm@4/R@5"] == recall_at(rerank_ranks(texts @ images.T, truth, 4), 5)
    assert "txt2img  itc+itm@4" in format_full_report(m2)


def test_constant_scores_rank_last_and_bad_inputs_are_refused():
    n = 6
    v = np.ones((n, 4)) / 2.0
    m = full_gallery_metrics(v, v, lambda t, i: np.zeros(len(t)), ks=(2,))
    assert m["retrieval/full/txt2img/itc/R@5"] == 0.0 and m["retrieval/full/txt2img/itc/median_rank"] == 6.0
    assert m["retrieval/full/img2txt/itm/R@1"] == 0.0
    with pytest.raises(ValueError, match="N >= 2"):
        full_gallery_metrics(v[:1], v[:1])
    with pytest.raises(ValueError, match="NaN"):
        full_gallery_metrics(v, v, lambda t, i: np.full(len(t), np.nan), ks=(2,))
