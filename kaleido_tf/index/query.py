"""Answering one query over a loaded index: a text (against the product images) or a product of the index (its
first image against the product texts), exact ITC top-k, optionally re-ranked by the ITM head.

Results are products: a text query scores each product by its best image. With `rerank=K` the first K
products of the ITC ranking are scored by the ITM head on the full pair (the query text with the product's
best image, or the query product's image with the candidate's text) and re-ordered by match probability
(ties keep the ITC order); the top_k of that order are returned, with both scores.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from kaleido_tf.evaluators.retrieval_fast import TEXT_FIELDS
from kaleido_tf.index.catalog import image_features_at
from kaleido_tf.index.errors import SearchIndexError
from kaleido_tf.index.search import itm_scores, rerank_order


@dataclasses.dataclass
class Hit:
    rank: int
    product_id: str
    score: float  # the ranking score: ITM match probability when re-ranked, else the ITC cosine
    itc_score: float
    itm_score: float | None = None

    def as_dict(self):
        return dataclasses.asdict(self)


def check_sizes(index, top_k, rerank):
    """-> (top_k, rerank, warnings): values past the gallery are clamped to it (with a warning); a top_k below 1
    or a rerank below top_k is refused."""
    warnings = []
    if top_k < 1:
        raise SearchIndexError(f"--top_k must be >= 1, got {top_k}")
    if rerank is not None and rerank < top_k:
        raise SearchIndexError(f"--rerank {rerank} is below --top_k {top_k}: re-rank at least the products returned")
    gallery = index.num_products
    if top_k > gallery:
        warnings.append(f"--top_k {top_k} is larger than the gallery: clamped to its {gallery} products")
        top_k = gallery
    if rerank is not None and rerank > gallery:
        warnings.append(f"--rerank {rerank} is larger than the gallery: clamped to its {gallery} products")
        rerank = gallery
    return top_k, rerank, warnings


def encode_query(tokenizer, text, length):
    """The model's text features [1, T] of a query; empty or blank text is refused."""
    if not text or not text.strip():
        raise SearchIndexError("--text is empty: give the words to search for")
    encoded = tokenizer.encode(text, length)
    if encoded.num_tokens <= 2:
        raise SearchIndexError(f"--text {text!r} has no tokens the tokenizer knows")
    return {k: getattr(encoded, k)[None].astype(np.int64) for k in TEXT_FIELDS}


def _hits(index, rows, itc, itm=None):
    return [
        Hit(
            rank=r + 1,
            product_id=str(index.product_ids[row]),
            score=float(itc[r] if itm is None else itm[r]),
            itc_score=float(itc[r]),
            itm_score=None if itm is None else float(itm[r]),
        )
        for r, row in enumerate(rows)
    ]


def search_text(index, model, text_features, top_k=10, rerank=None, batch_size=64):
    """A text query (features [1, T]) -> [Hit]. `model` embeds the query (and re-ranks)."""

    query = np.asarray(model.embed_text({k: tf.constant(v) for k, v in text_features.items()}), np.float32)  # [1, D]
    rows, scores = index.search_images(query, rerank or top_k)
    rows, scores = rows[0], scores[0]
    if not rerank:
        return _hits(index, rows, scores)
    images = index.best_images(query[0], rows)
    pairs = image_features_at(index.shard_paths(), index.image_location[images])
    pairs.update({k: np.repeat(v, len(rows), axis=0) for k, v in text_features.items()})
    probabilities = itm_scores(model, pairs, batch_size)
    order = rerank_order(probabilities)[:top_k]
    return _hits(index, rows[order], scores[order], probabilities[order])


def search_product(index, model, product_id, top_k=10, rerank=None, batch_size=64):
    """A product of the index as the query: its first image against the product texts -> [Hit].
    `model` is needed only to re-rank (the query's vector is already in the index)."""
    row = index.product_row(product_id)
    image = index.first_image(row)
    query = np.asarray(index.image_vectors[image : image + 1], np.float32)  # [1, D]
    rows, scores = index.search_texts(query, rerank or top_k)
    rows, scores = rows[0], scores[0]
    if not rerank:
        return _hits(index, rows, scores)
    image_features = image_features_at(index.shard_paths(), index.image_location[[image]])
    pairs = {k: np.repeat(v, len(rows), axis=0) for k, v in image_features.items()}
    pairs.update({k: np.asarray(getattr(index, f"text_{k}"))[rows].astype(np.int64) for k in TEXT_FIELDS})
    probabilities = itm_scores(model, pairs, batch_size)
    order = rerank_order(probabilities)[:top_k]
    return _hits(index, rows[order], scores[order], probabilities[order])
