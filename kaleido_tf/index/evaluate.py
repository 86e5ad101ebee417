"""The full-gallery protocol on a preprocessed split: every product's text and first image embedded, ITM
scores computed for the pairs the protocol needs (`kaleido_tf.evaluators.retrieval_full`)."""

import numpy as np
import tensorflow as tf

from kaleido_tf.evaluators.retrieval_fast import TEXT_FIELDS, image_fields
from kaleido_tf.evaluators.retrieval_full import EXHAUSTIVE_LIMIT, RERANK_KS, full_gallery_metrics
from kaleido_tf.index import catalog
from kaleido_tf.index.errors import SearchIndexError
from kaleido_tf.index.search import itm_scores


def split_products(data_dir, split="test", batch_size=64):
    """-> (product ids [N], text features {k: [N, T]}, image features {k: [N, ...]}): each product's text and
    first image, in catalog order."""
    keep = set(TEXT_FIELDS) | set(image_fields())
    ids, rows = [], {}
    seen = set()
    for shard in catalog.catalog_shards(data_dir, (split,)):
        for batch in catalog.read_shard(shard.path, batch_size):
            for i, product in enumerate(batch["text_prod_id"]):
                if product in seen:
                    continue
                seen.add(product)
                ids.append(product)
                for k, v in batch.items():
                    if k in keep:
                        rows.setdefault(k, []).append(v[i])
    if len(ids) < 2:
        raise SearchIndexError(f"--data_dir {data_dir}: split {split!r} has {len(ids)} products; the protocol needs 2")
    arrays = {k: np.stack(v) for k, v in rows.items()}
    texts = {k: arrays[k] for k in TEXT_FIELDS if k in arrays}
    images = {k: v for k, v in arrays.items() if k not in TEXT_FIELDS}
    return ids, texts, images


def _embed(fn, features, batch_size):

    count = len(next(iter(features.values())))
    out = [
        np.asarray(fn({k: tf.constant(v[s : s + batch_size]) for k, v in features.items()}), np.float32)
        for s in range(0, count, batch_size)
    ]
    return np.concatenate(out)


def evaluate_catalog(model, data_dir, split="test", ks=RERANK_KS, batch_size=64, exhaustive_limit=EXHAUSTIVE_LIMIT):
    """The metrics of `full_gallery_metrics` for `model` on the products of `split` (probabilities from ITM)."""
    ids, texts, images = split_products(data_dir, split, batch_size)
    text_vectors = _embed(model.embed_text, texts, batch_size)
    image_vectors = _embed(model.embed_image, images, batch_size)

    def pair_scores(text_rows, image_rows):
        pairs = {k: v[text_rows] for k, v in texts.items()}
        pairs.update({k: v[image_rows] for k, v in images.items()})
        return itm_scores(model, pairs, batch_size)

    return full_gallery_metrics(text_vectors, image_vectors, pair_scores, ks=ks, exhaustive_limit=exhaustive_limit)
