"""Catalog search: embed a preprocessed catalog once (`build_index`), then answer text or product queries by
exact top-k over the stored vectors (`SearchIndex.search`), optionally re-ranked with the ITM head.

The model is anything with the search interface of the retrieval model:
    embed_text(features) -> [B, D] unit-length float32   (input_ids, input_mask, segment_ids)
    embed_image(features) -> [B, D] unit-length float32  (the image feature fields of the shards)
    itm_logits(features) -> [B, 2]                        (a full text + image pair; match = softmax[:, 1])
"""

from kaleido_tf.index.builder import build_index
from kaleido_tf.index.errors import SearchIndexError
from kaleido_tf.index.fingerprint import model_fingerprint
from kaleido_tf.index.search import exact_top_k
from kaleido_tf.index.store import SearchIndex

__all__ = ["SearchIndexError", "SearchIndex", "build_index", "exact_top_k", "model_fingerprint"]
