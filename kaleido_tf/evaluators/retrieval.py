"""Image-text retrieval metrics over the scored pairs of a result file (`retrieval_format` reads it).

Scoring (`score_retrieval`, `score_retrieval_arrays`):

- Accuracy: argmax of the two logits equals the label, over all pairs, divided by ``pairs + 1e-5``.
- Queries are keyed by ``text_prod_id`` for ``txt2img`` and by ``image_prod_id`` for ``img2txt``. Each
  query's candidates are sorted by the raw match logit (``logits[:, 1]``, float32) in descending order.
  Rank@K (K = 1, 5, 10, 100) is the share of queries with a positive among the first K candidates,
  divided by ``queries + 1e-5``.
- Ties: the sort is stable, so candidates with equal match logits keep the order in which they appear
  in the result file (earlier line first, then earlier position in the line). A positive tied with
  negatives therefore counts as ranked above them exactly when it was written before them.
- AUC: ROC AUC of the match logit against the labels over all pairs, computed from rank statistics
  (Mann-Whitney U) with tied scores given their average rank, which equals the trapezoidal ROC AUC.
  When only one label class is present the AUC is undefined and reported as NaN.

Both the ``1e-5`` in the denominators and the float32 logits reproduce the reference scorer, so that
numbers stay comparable with published ones.
"""

import math
from collections.abc import Iterable

import numpy as np

from kaleido_tf.evaluators.retrieval_format import RETRIEVAL_TYPES, RetrievalRecord, RetrievalResults, check_type

RANK_KS = (1, 5, 10, 100)
METRIC_KEYS = (
    "accuracy",
    "rank@1",
    "rank@5",
    "rank@10",
    "rank@100",
    "auc",
    "queries",
    "pairs",
    "min_candidates",
    "max_candidates",
)
COUNT_EPSILON = 1e-5

__all__ = [
    "COUNT_EPSILON",
    "METRIC_KEYS",
    "RANK_KS",
    "RETRIEVAL_TYPES",
    "check_query_type",
    "format_retrieval_report",
    "roc_auc",
    "score_retrieval",
    "score_retrieval_arrays",
]


# --------------------------------------------------------------------------------------------------


def roc_auc(labels, scores):
    """ROC AUC of `scores` against 0/1 `labels`; tied scores share their average rank.

    Equals the area under the trapezoidal ROC curve. Returns NaN when only one class is present.
    """
    labels = np.asarray(labels).reshape(-1)  # [N]
    scores = np.asarray(scores).reshape(-1)  # [N]
    if labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} differ in size")
    positive = labels == 1
    num_pos = int(positive.sum())
    num_neg = int(labels.shape[0] - num_pos)
    if num_pos == 0 or num_neg == 0:
        return math.nan
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(counts).astype(np.float64)  # [U] 1-based rank of each value's last copy
    average_rank = last_rank - (counts - 1) / 2.0  # [U]
    rank_sum = float(average_rank[inverse.reshape(-1)][positive].sum())
    return (rank_sum - num_pos * (num_pos + 1) / 2.0) / (num_pos * num_neg)


def score_retrieval_arrays(query_ids, labels, logits):
    """Retrieval metrics from in-memory arrays (vectorised).

    Args:
      query_ids: [N] query key of each pair (any hashable ids, compared for equality).
      labels: [N] or [N, 1] 0/1 labels.
      logits: [N, 2] (or flat [2N]) ITM logits; scored as float32.

    Returns:
      dict with `METRIC_KEYS`: accuracy, rank@1, rank@5, rank@10, rank@100, auc, queries, pairs, and the
      fewest and most candidates of a query (min_candidates, max_candidates).
    """
    query_ids = np.asarray(query_ids, dtype=object).reshape(-1)  # [N]
    labels = np.asarray(labels).reshape(-1)  # [N]
    logits = np.asarray(logits, dtype=np.float32)
    n = query_ids.shape[0]
    if labels.shape[0] != n:
        raise ValueError(f"labels hold {labels.shape[0]} values for {n} query_ids")
    if logits.size != 2 * n or (logits.ndim == 2 and logits.shape[1] != 2) or logits.ndim > 2:
        raise ValueError(f"logits of shape {logits.shape} do not match {n} pairs (expected [{n}, 2])")
    logits = logits.reshape(n, 2)  # [N, 2]
    if n and not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, got {np.unique(labels).tolist()[:10]}")
    if not np.isfinite(logits).all():
        raise ValueError("logits contain NaN or infinite values")
    labels = labels.astype(np.int32)

    metrics = {"accuracy": 0.0}
    correct = int((np.argmax(logits, axis=1) == labels).sum())
    metrics["accuracy"] = correct / (n + COUNT_EPSILON)

    scores = logits[:, 1]  # [N]
    first_seen = {}  # query id -> dense index, in order of first appearance
    query_index = np.fromiter(
        (first_seen.setdefault(q, len(first_seen)) for q in query_ids.tolist()), dtype=np.int64, count=n
    )  # [N]
    num_queries = len(first_seen)
    # Sort by query, then match logit descending, then file order (a stable descending sort).
    order = np.lexsort((np.arange(n), -scores, query_index))  # [N]
    sorted_queries = query_index[order]
    group_start = np.searchsorted(sorted_queries, sorted_queries, side="left")
    position = np.empty(n, dtype=np.int64)  # [N] 0-based rank of each pair within its query
    position[order] = np.arange(n) - group_start
    best = np.full(num_queries, np.iinfo(np.int64).max, dtype=np.int64)  # [Q] best positive rank
    positive = labels == 1
    np.minimum.at(best, query_index[positive], position[positive])
    for k in RANK_KS:
        metrics[f"rank@{k}"] = int((best < k).sum()) / (num_queries + COUNT_EPSILON)

    metrics["auc"] = roc_auc(labels, scores)
    metrics["queries"] = num_queries
    metrics["pairs"] = int(n)
    sizes = np.bincount(query_index, minlength=num_queries)  # [Q] candidates of each query
    metrics["min_candidates"] = int(sizes.min()) if num_queries else 0
    metrics["max_candidates"] = int(sizes.max()) if num_queries else 0
    return {key: metrics[key] for key in METRIC_KEYS}


def score_retrieval(records: RetrievalResults | Iterable[RetrievalRecord], type="txt2img"):  # pylint: disable=redefined-builtin
    """Retrieval metrics of `records` (a `RetrievalResults` or an iterable of `RetrievalRecord`).

    Args:
      records: the scored pairs.
      type: "txt2img" (queries keyed by text_prod_id) or "img2txt" (keyed by image_prod_id).

    Returns:
      dict with `METRIC_KEYS`.
    """
    check_type(type)
    if not isinstance(records, RetrievalResults):
        records = RetrievalResults.from_records(records)
    return score_retrieval_arrays(records.query_ids(type), records.labels, records.logits)


def _positives_per_query(query_ids, labels):
    """[Q] number of positive pairs of each query (queries in order of first appearance)."""
    first_seen = {}
    index = np.fromiter((first_seen.setdefault(q, len(first_seen)) for q in query_ids.tolist()), np.int64)
    return np.bincount(index, weights=np.asarray(labels).reshape(-1) == 1, minlength=len(first_seen))


def check_query_type(results, type):  # pylint: disable=redefined-builtin
    """Refuses results of the other direction: every query holds exactly one positive when the pairs are
    keyed for their own direction. Raises ValueError naming both when the pairs keyed for `type` do not
    have that property and keyed for the other direction do."""
    check_type(type)
    other = "img2txt" if type == "txt2img" else "txt2img"
    own = _positives_per_query(results.query_ids(type), results.labels)
    if not len(own) or np.all(own == 1):
        return
    theirs = _positives_per_query(results.query_ids(other), results.labels)
    if np.all(theirs == 1):
        key = {"txt2img": "text_prod_id", "img2txt": "image_prod_id"}
        raise ValueError(
            f"these are {other} results (each {key[other]} has one positive), not {type}: keyed by "
            f"{key[type]}, {int(np.sum(own != 1))} of {len(own)} queries have no or several positives; "
            f"use --type {other} or the {type} data"
        )


def format_retrieval_report(metrics):
    """Human-readable report of `score_retrieval` output, one metric per line; Rank@K only for K below the
    fewest candidates of a query (above, it is 1 whatever the model does)."""
    missing = [k for k in METRIC_KEYS if k not in metrics]
    if missing:
        raise ValueError(f"metrics lack the keys {missing}")
    auc = metrics["auc"]
    auc_text = "n/a (only one label class present)" if auc is None or math.isnan(auc) else f"{auc:.6f}"
    low, high = metrics["min_candidates"], metrics["max_candidates"]
    lines = [
        f"Queries: {metrics['queries']}  Pairs: {metrics['pairs']}  "
        f"Candidates per query: {low if low == high else f'{low} to {high}'}",
        f"Accuracy: {metrics['accuracy']:.6f}",
    ]
    # Rank@K for K >= a query's candidates counts that query whatever the scores: shown only below.
    lines += [f"Rank@{k}: {metrics[f'rank@{k}']:.6f}" for k in RANK_KS if k < low]
    hidden = [f"Rank@{k}" for k in RANK_KS if k >= low]
    if hidden:
        lines.append(f"{', '.join(hidden)}: not shown (a query has only {low} candidates)")
    lines.append(f"AUC: {auc_text}")
    return "\n".join(lines)
