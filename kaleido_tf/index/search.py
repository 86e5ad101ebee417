"""Top-k search over unit vectors: exact by matrix product (the default), or through a faiss index.

Scores are inner products (cosine similarities: every vector has unit length). Exact search computes the
scores of a chunk of queries against the whole gallery ([q, N], at most `max_scores` floats at a time), so
its cost is one read of the gallery per query chunk.

Ties: among equal scores the lower gallery row comes first, so results are deterministic.
"""

import numpy as np
import tensorflow as tf

MAX_SCORES = 1 << 25  # floats of one query chunk's score matrix (128 MiB)


def top_k_rows(scores, k):
    """scores [Q, N] -> (rows [Q, k] int64, values [Q, k] float32), best first, ties by lower row."""
    scores = np.asarray(scores, np.float32)
    q, n = scores.shape
    k = min(int(k), n)
    rows = np.empty((q, k), np.int64)
    for i in range(q):
        s = scores[i]
        if k < n:
            threshold = s[np.argpartition(-s, k - 1)[k - 1]]
            above = np.flatnonzero(s > threshold)
            equal = np.flatnonzero(s == threshold)[: k - above.size]
            candidates = np.concatenate([above, equal])
        else:
            candidates = np.arange(n)
        rows[i] = candidates[np.lexsort((candidates, -s[candidates]))]
    return rows, np.take_along_axis(scores, rows, axis=1)


def exact_scores(queries, vectors, group_starts=None, max_scores=MAX_SCORES):
    """[Q, D] x [N, D] -> [Q, N] inner products; with `group_starts` (the first row of each group, ascending)
    the maximum over each group's rows -> [Q, G]. Computed in query chunks of at most `max_scores` floats."""
    queries = np.atleast_2d(np.asarray(queries, np.float32))
    n = vectors.shape[0]
    width = n if group_starts is None else len(group_starts)
    out = np.empty((queries.shape[0], width), np.float32)
    chunk = max(1, max_scores // max(n, 1))
    for start in range(0, queries.shape[0], chunk):
        block = queries[start : start + chunk] @ np.asarray(vectors).T  # [q, N]
        if group_starts is not None:
            block = np.maximum.reduceat(block, group_starts, axis=1)  # [q, G]
        out[start : start + chunk] = block
    return out


def exact_top_k(queries, vectors, k, group_starts=None):
    """Exact top-k: -> (rows [Q, k], scores [Q, k]); rows are group indices when `group_starts` is given."""
    return top_k_rows(exact_scores(queries, vectors, group_starts), k)


class FaissSearcher:
    """An approximate inner-product index (faiss HNSW, `pip install kaleido_tf[faiss]`) over [N, D] vectors.

    Args:
        vectors: the gallery, unit rows.
        m: HNSW neighbours per node; ef_construction, ef_search: the breadth of building and of a search
            (more: slower and closer to exact).
    Measure its recall against `exact_top_k` (bench/retrieval.py, tests/index) before trusting a setting.
    """

    def __init__(self, vectors, m=32, ef_construction=80, ef_search=64):
        try:
            # local import: faiss is an optional extra (kaleido_tf[faiss])
            import faiss  # noqa: PLC0415
        except ImportError:
            raise ImportError("faiss is not installed: pip install kaleido_tf[faiss] (faiss-cpu)") from None
        vectors = np.ascontiguousarray(vectors, np.float32)
        self.index = faiss.IndexHNSWFlat(vectors.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = ef_construction
        self.index.hnsw.efSearch = ef_search
        self.index.add(vectors)

    def search(self, queries, k):
        """-> (rows [Q, k], scores [Q, k]), best first (rows of -1 where fewer than k were found)."""
        scores, rows = self.index.search(np.ascontiguousarray(np.atleast_2d(queries), np.float32), int(k))
        return rows.astype(np.int64), scores


def recall_against_exact(approximate_rows, exact_rows):
    """Mean fraction of the exact top-k rows that the approximate search also returned (recall@k)."""
    hits = [len(set(a.tolist()) & set(e.tolist())) / len(e) for a, e in zip(approximate_rows, exact_rows)]
    return float(np.mean(hits))


def match_probabilities(logits):
    """ITM logits [B, 2] -> softmax[:, 1], the probability that the pair matches."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return (e[:, 1] / e.sum(axis=1)).astype(np.float32)


def itm_scores(model, pair_features, batch_size=64):
    """The ITM match probability of each pair: pair_features, dict of [P, ...] arrays -> [P] float32."""

    count = len(next(iter(pair_features.values())))
    out = []
    for start in range(0, count, batch_size):
        batch = {k: tf.constant(v[start : start + batch_size]) for k, v in pair_features.items()}
        logits = model.itm_logits(batch)
        out.append(match_probabilities(logits.numpy() if hasattr(logits, "numpy") else logits))
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def rerank_order(itm_probabilities):
    """The re-ranked order of ITC candidates: by ITM probability, ties kept in ITC order (stable)."""
    return np.argsort(-np.asarray(itm_probabilities), kind="stable")
