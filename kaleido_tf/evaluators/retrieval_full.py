"""The full-gallery retrieval protocol (`full`), beside the original 1 + 100 candidates (`sample100`).

Every product of the split is both a query and a gallery item: text i belongs to image i. In each direction
(txt2img: a text against all N images; img2txt: an image against all N texts) the rank of the query's own
item is found for three methods:

- `itc`: the contrastive (dual-encoder) cosine, every query against the whole gallery;
- `itc+itm@k`: the first k of the ITC ranking re-scored by the ITM head on the full pair and re-ordered by
  it; an item outside the first k keeps its ITC rank (which is above k); k pairs per query;
- `itm`: every pair scored by ITM (N pairs per query), only for galleries of at most `exhaustive_limit`
  items (default 1000: 10^6 pairs).

Reported: Recall@1/5/10 (the fraction of queries whose own item ranks within k) and the median rank, under
the keys `retrieval/full/<direction>/<method>/R@<k>` and `.../median_rank`, with the chance levels of a
random ranking (`retrieval/full/chance/R@<k>` = k / N, `.../median_rank` = (N + 1) / 2) and the gallery size.
A method with k >= N is left out (it is exhaustive ITM).

Ties count against the query: an item is ranked below every other item of the same score, so the rank is
1 + the number of other items scoring at least as high. A constant scorer therefore gets rank N (recall 0
below k = N), never a lucky 1; the same rule picks the ITC candidates that ITM re-ranks.
"""

import numpy as np

PROTOCOLS = ("sample100", "full")
DIRECTIONS = ("txt2img", "img2txt")
RECALL_KS = (1, 5, 10)
RERANK_KS = (16, 64, 128)
EXHAUSTIVE_LIMIT = 1000
PREFIX = "retrieval/full"


def _targets(scores, targets):
    q = scores.shape[0]
    return np.arange(q) if targets is None else np.asarray(targets, np.int64).reshape(q)


def ranks_from_scores(scores, targets=None):
    """scores [Q, G], query q's own item targets[q] (default q) -> 1-based ranks [Q], ties against the query."""
    scores = np.asarray(scores, np.float64)
    t = _targets(scores, targets)
    own = scores[np.arange(scores.shape[0]), t][:, None]  # [Q, 1]
    return np.sum(scores >= own, axis=1).astype(np.int64)  # the own item and every other item at least as high


def candidate_order(scores, targets=None):
    """[Q, G] -> the ranking of each query's gallery [Q, G]: by score, the own item after its equals, then row."""
    scores = np.asarray(scores, np.float64)
    t = _targets(scores, targets)
    q, g = scores.shape
    is_own = np.zeros((q, g), np.int8)
    is_own[np.arange(q), t] = 1
    rows = np.broadcast_to(np.arange(g), (q, g))
    return np.stack([np.lexsort((rows[i], is_own[i], -scores[i])) for i in range(q)])


def rerank_ranks(itc_scores, itm_scores, k, targets=None):
    """Ranks [Q] after re-scoring the first k ITC candidates of each query with ITM.

    itm_scores: [Q, G] (only the entries of the candidates are read) or a callable (query rows [P], gallery
    rows [P]) -> [P] scores.
    """
    itc_scores = np.asarray(itc_scores, np.float64)
    t = _targets(itc_scores, targets)
    q = itc_scores.shape[0]
    candidates = candidate_order(itc_scores, t)[:, :k]  # [Q, k]
    itc_ranks = ranks_from_scores(itc_scores, t)
    if callable(itm_scores):
        rescored = np.asarray(itm_scores(np.repeat(np.arange(q), k), candidates.reshape(-1)), np.float64).reshape(q, k)
    else:
        rescored = np.take_along_axis(np.asarray(itm_scores, np.float64), candidates, axis=1)  # [Q, k]
    ranks = itc_ranks.copy()
    for i in range(q):
        where = np.flatnonzero(candidates[i] == t[i])
        if where.size:  # the own item is among the candidates: its ITM rank among them
            ranks[i] = np.sum(rescored[i] >= rescored[i, where[0]])
    return ranks


def recall_at(ranks, k):
    return float(np.mean(np.asarray(ranks) <= k))


def _method_metrics(metrics, direction, method, ranks):
    for k in RECALL_KS:
        metrics[f"{PREFIX}/{direction}/{method}/R@{k}"] = recall_at(ranks, k)
    metrics[f"{PREFIX}/{direction}/{method}/median_rank"] = float(np.median(ranks))


class _PairCache:
    """ITM scores of (text, image) pairs computed once, in one call, for everything both directions need."""

    def __init__(self, pair_scores, n):
        self.pair_scores, self.n = pair_scores, n
        self.keys = np.zeros(0, np.int64)
        self.values = np.zeros(0, np.float64)

    def compute(self, text_rows, image_rows):
        keys = np.unique(np.asarray(text_rows, np.int64) * self.n + np.asarray(image_rows, np.int64))
        self.keys = keys
        self.values = np.asarray(self.pair_scores(keys // self.n, keys % self.n), np.float64).reshape(-1)
        if self.values.shape != keys.shape or not np.all(np.isfinite(self.values)):
            raise ValueError(f"the ITM scorer returned {self.values.shape} scores for {keys.size} pairs, or NaN/Inf")

    def lookup(self, text_rows, image_rows):
        keys = np.asarray(text_rows, np.int64) * self.n + np.asarray(image_rows, np.int64)
        at = np.searchsorted(self.keys, keys)
        if np.any(at >= self.keys.size) or np.any(self.keys[np.minimum(at, self.keys.size - 1)] != keys):
            raise RuntimeError("an ITM pair was not computed")  # a bug, not an input error
        return self.values[at]


def full_gallery_metrics(
    text_vectors, image_vectors, itm_pair_scores=None, ks=RERANK_KS, exhaustive_limit=EXHAUSTIVE_LIMIT
):
    """The full-gallery protocol on N products (text i <-> image i).

    Args:
        text_vectors, image_vectors: [N, D] unit ITC embeddings.
        itm_pair_scores: callable (text rows [P], image rows [P]) -> ITM match scores [P] (e.g. the match
            probability), called once with every pair needed; None: ITC only.
        ks: the re-ranking depths (each below N is reported).
        exhaustive_limit: the largest N for which every pair is scored by ITM.
    Returns a dict of floats (see the module docstring).
    """
    text_vectors = np.asarray(text_vectors, np.float32)
    image_vectors = np.asarray(image_vectors, np.float32)
    n = text_vectors.shape[0]
    if n < 2 or image_vectors.shape != text_vectors.shape:
        raise ValueError(
            f"the full-gallery protocol needs N >= 2 matching texts and images, got {text_vectors.shape} texts "
            f"and {image_vectors.shape} images"
        )
    if not (np.all(np.isfinite(text_vectors)) and np.all(np.isfinite(image_vectors))):
        raise ValueError("the ITC embeddings hold NaN or Inf")
    similarity = text_vectors @ image_vectors.T  # [N texts, N images]
    itc = {"txt2img": similarity, "img2txt": similarity.T}
    metrics = {f"{PREFIX}/gallery_size": float(n)}
    for k in RECALL_KS:
        metrics[f"{PREFIX}/chance/R@{k}"] = min(k, n) / n
    metrics[f"{PREFIX}/chance/median_rank"] = (n + 1) / 2
    for direction in DIRECTIONS:
        _method_metrics(metrics, direction, "itc", ranks_from_scores(itc[direction]))
    if itm_pair_scores is None:
        return metrics
    ks = sorted(k for k in set(ks) if 1 <= k < n)
    exhaustive = n <= exhaustive_limit
    cache = _PairCache(itm_pair_scores, n)
    if exhaustive:
        grid = np.arange(n * n)
        cache.compute(grid // n, grid % n)
    elif ks:  # the deepest candidate lists of both directions hold those of every smaller k
        deepest = max(ks)
        t2i = candidate_order(itc["txt2img"])[:, :deepest]
        i2t = candidate_order(itc["img2txt"])[:, :deepest]
        rows = np.repeat(np.arange(n), deepest)
        cache.compute(np.concatenate([rows, i2t.reshape(-1)]), np.concatenate([t2i.reshape(-1), rows]))
    for direction in DIRECTIONS:
        if direction == "txt2img":
            pair = cache.lookup  # (query text, gallery image)
        else:
            pair = lambda q, g: cache.lookup(g, q)  # noqa: E731 (query image, gallery text)
        for k in ks:
            _method_metrics(metrics, direction, f"itc+itm@{k}", rerank_ranks(itc[direction], pair, k))
            metrics[f"{PREFIX}/{direction}/itc+itm@{k}/itm_passes_per_query"] = float(k)
        if exhaustive:
            grid = np.arange(n)
            scores = pair(np.repeat(grid, n), np.tile(grid, n)).reshape(n, n)
            _method_metrics(metrics, direction, "itm", ranks_from_scores(scores))
            metrics[f"{PREFIX}/{direction}/itm/itm_passes_per_query"] = float(n)
    return metrics


def format_full_report(metrics):
    """Human-readable table: one line per direction and method."""
    n = int(metrics[f"{PREFIX}/gallery_size"])
    lines = [f"full-gallery retrieval, {n} products (chance R@1 {metrics[f'{PREFIX}/chance/R@1']:.4f})"]
    methods = []
    for key in metrics:
        parts = key.split("/")
        if len(parts) == 5 and parts[2] in DIRECTIONS and parts[4] == "R@1":
            methods.append((parts[2], parts[3]))
    for direction, method in methods:
        base = f"{PREFIX}/{direction}/{method}"
        recalls = "  ".join(f"R@{k} {metrics[f'{base}/R@{k}']:.3f}" for k in RECALL_KS)
        lines.append(f"{direction:8s} {method:14s} {recalls}  median rank {metrics[f'{base}/median_rank']:.1f}")
    return "\n".join(lines)
