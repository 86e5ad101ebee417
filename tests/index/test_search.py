"""kaleido_tf.index search: exact top-k, product aggregation, faiss recall, ITM re-ranking, refused queries."""

import numpy as np
import pytest

from kaleido_tf.index import SearchIndexError, build_index
from kaleido_tf.index.query import check_sizes, encode_query, search_product, search_text
from kaleido_tf.index.search import (
    exact_scores,
    exact_top_k,
    match_probabilities,
    recall_against_exact,
    rerank_order,
    top_k_rows,
)
from tests.index.fakes import fake_model, product_text_ids, write_catalog


def _unit(rng, n, d):
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_exact_top_k_equals_a_full_sort_and_is_chunked_without_changing_results():
    rng = np.random.default_rng(0)
    gallery, queries = _unit(rng, 500, 16), _unit(rng, 7, 16)
    rows, scores = exact_top_k(queries, gallery, 10)
    full = queries @ gallery.T
    np.testing.assert_array_equal(rows, np.argsort(-full, axis=1, kind="stable")[:, :10])
    np.testing.assert_allclose(scores, np.take_along_axis(full, rows, axis=1), rtol=1e-6)
    # one query per chunk (a matrix-vector product) rounds like the whole matrix product, to float32 precision
    np.testing.assert_allclose(exact_scores(queries, gallery, max_scores=600), full, atol=1e-6)


def test_ties_rank_the_lower_row_first():
    scores = np.array([[0.5, 0.9, 0.5, 0.9, 0.1, 0.5]], np.float32)
    rows, values = top_k_rows(scores, 4)
    assert rows.tolist() == [[1, 3, 0, 2]]
    assert values.tolist() == [[pytest.approx(0.9), pytest.approx(0.9), 0.5, 0.5]]


def test_grouped_scores_are_the_best_member_of_each_group():
    vectors = np.eye(4, dtype=np.float32)
    query = np.array([[0.1, 0.7, 0.2, 0.4]], np.float32)
    # groups: rows {0, 1}, {2}, {3}
    np.testing.assert_allclose(exact_scores(query, vectors, group_starts=[0, 2, 3]), [[0.7, 0.2, 0.4]])
    rows, _ = exact_top_k(query, vectors, 2, group_starts=[0, 2, 3])
    assert rows.tolist() == [[0, 2]]


def test_faiss_recall_against_exact_search():
    pytest.importorskip("faiss")
    from kaleido_tf.index.search import FaissSearcher

    rng = np.random.default_rng(1)
    gallery, queries = _unit(rng, 5000, 32), _unit(rng, 50, 32)
    exact, _ = exact_top_k(queries, gallery, 10)
    approximate, _ = FaissSearcher(gallery, ef_search=128).search(queries, 10)
    recall = recall_against_exact(approximate, exact)
    assert recall >= 0.9, recall  # HNSW at this breadth finds nearly all of the exact top-10
    assert recall_against_exact(exact, exact) == 1.0
    assert recall_against_exact(exact[:, ::-1] + 10**6, exact) == 0.0


def test_match_probability_and_stable_rerank_order():
    np.testing.assert_allclose(match_probabilities([[0.0, 0.0], [0.0, np.log(3.0)]]), [0.5, 0.75], rtol=1e-6)
    assert rerank_order([0.2, 0.9, 0.2, 0.95]).tolist() == [3, 1, 0, 2]


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("catalog"))
    write_catalog(root, num_products=12, images_per_product=(1, 2), num_shards=2)
    model = fake_model()
    built = build_index(model, root, root + "/index", batch_size=5, progress=False)
    return built, model


def _text(p):
    ids = product_text_ids(p)[None]
    return {"input_ids": ids, "input_mask": (ids != 0).astype(np.int64), "segment_ids": np.zeros_like(ids)}


def test_text_search_ranks_products_by_their_best_image(index):
    built, model = index
    hits = search_text(built, model, _text(3), top_k=5)
    query = np.asarray(model.embed_text(_text(3)))[0]
    best = {}
    for i, product in enumerate(built.image_product.tolist()):
        best[product] = max(best.get(product, -2.0), float(built.image_vectors[i] @ query))
    order = sorted(best, key=lambda p: (-best[p], p))[:5]
    assert [h.product_id for h in hits] == [str(built.product_ids[p]) for p in order]
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    np.testing.assert_allclose([h.score for h in hits], [best[p] for p in order], rtol=1e-5)


def test_rerank_reorders_the_itc_candidates_by_itm_probability(index):
    built, model = index
    hits = search_text(built, model, _text(3), top_k=4, rerank=8)
    candidates = search_text(built, model, _text(3), top_k=8)
    assert len(hits) == 4 and {h.product_id for h in hits} <= {h.product_id for h in candidates}
    itm = [h.itm_score for h in hits]
    assert itm == sorted(itm, reverse=True) and all(0.0 <= s <= 1.0 for s in itm)
    # the fake ITM is monotone in the same cosine as ITC: re-ranking keeps the ITC order
    assert [h.product_id for h in hits] == [h.product_id for h in candidates[:4]]
    product_hits = search_product(built, model, "p003", top_k=3, rerank=6)
    assert [h.itm_score for h in product_hits] == sorted((h.itm_score for h in product_hits), reverse=True)


def test_product_query_uses_its_first_image_against_the_texts(index):
    built, _ = index
    hits = search_product(built, None, "p004", top_k=12)
    image = built.first_image(built.product_row("p004"))
    expected = np.argsort(-(built.text_vectors @ built.image_vectors[image]), kind="stable")
    assert [h.product_id for h in hits] == built.product_ids[expected].tolist()


def test_meaningless_queries_are_refused_or_clamped(index):
    built, _ = index
    with pytest.raises(SearchIndexError, match="not in the index"):
        search_product(built, None, "nope", top_k=3)
    with pytest.raises(SearchIndexError, match="--top_k must be >= 1"):
        check_sizes(built, 0, None)
    with pytest.raises(SearchIndexError, match="below --top_k"):
        check_sizes(built, 5, 3)
    assert check_sizes(built, 50, 80) == (
        12,
        12,
        [
            "--top_k 50 is larger than the gallery: clamped to its 12 products",
            "--rerank 80 is larger than the gallery: clamped to its 12 products",
        ],
    )

    class Tokenizer:
        def encode(self, text, length):
            raise AssertionError("not reached")

    for text in ("", "   "):
        with pytest.raises(SearchIndexError, match="--text is empty"):
            encode_query(Tokenizer(), text, 8)


def test_rerank_follows_the_itm_head_when_it_disagrees_with_itc(index):
    built, model = index

    class Reversed:  # the same embeddings, an ITM head that prefers the least similar pair
        embed_text = staticmethod(model.embed_text)

        @staticmethod
        def itm_logits(features):
            logits = np.asarray(model.itm_logits(features))
            return np.stack([logits[:, 0], -logits[:, 1]], axis=1)

    candidates = search_text(built, model, _text(5), top_k=8)
    hits = search_text(built, Reversed, _text(5), top_k=3, rerank=8)
    assert [h.product_id for h in hits] == [h.product_id for h in candidates[::-1][:3]]
    assert [h.itc_score for h in hits] == pytest.approx([h.itc_score for h in candidates[::-1][:3]])
