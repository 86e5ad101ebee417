"""The raw-input signatures: JPEG/PNG bytes and UTF-8 text in, answers out; added beside the feature ones.

Each runs the in-graph image path (`image_inputs.RawImageFeatures`, the preprocessing's extractor) and then
the feature-taking signature of the same export, so both give the same answer for the same features
(B batch, C classes, K = min(top_k, C or products), D embedding size, L caption tokens):

    classifier   classify_image   image_bytes [B]          -> class_name [B], class_id [B] int64,
                                                              probabilities [B, C] (by class id),
                                                              top_class_names [B, K], top_class_ids [B, K],
                                                              top_probabilities [B, K] (best first)
                                  the text input is empty ([CLS] [SEP]): the class from the image alone
                 classify_raw     text [B], image_bytes [B] -> the same, with the product text
    pretraining  itm_score_raw    text [B], image_bytes [B] -> match_probability [B], logits [B, 2]
    retrieval    itm_score_raw    text [B], image_bytes [B] -> match_probability [B], logits [B, 2]
                 embed_image_raw  image_bytes [B]          -> embedding [B, D] (unit length)
      + index    search_text      text [B]                 -> product_ids [B, K], scores [B, K],
                                                              product_rows [B, K] int64, texts [B, K]
                                  (the products whose best image matches the text best)
                 search_image     image_bytes [B]          -> the same keys (the products whose text
                                                              matches the image best)
    captioner    caption_image    image_bytes [B]          -> caption [B], token_ids [B, L]

Text inputs must be non-empty valid UTF-8 (`serving_inputs.check_text`). The catalog of the search
signatures (the index's unit vectors, product ids and texts) is stored in the SavedModel as variables;
scores are inner products, ties broken by the lower catalog row, as `kaleido_tf.index` ranks them.
Core TensorFlow ops only, plus the tensorflow-text WordPiece ops of the text encoder.
"""

import numpy as np
import tensorflow as tf

from kaleido_tf.export import serving_inputs
from kaleido_tf.export.caption_module import CAPTIONER
from kaleido_tf.export.image_inputs import IMAGE_BYTES_FIELD, RawImageFeatures, image_bytes_spec
from kaleido_tf.export.retrieval_module import RETRIEVAL
from kaleido_tf.export.serving_module import CLASSIFIER, PRETRAIN

TEXT_FIELD = {"dtype": "string", "shape": [-1], "description": "raw UTF-8 text, not empty; WordPiece in the graph"}
TEXT_SPEC = tf.TensorSpec([None], tf.string, name="text")
DEFAULT_TOP_K = 10


class CatalogVectors(tf.Module):
    """A SearchIndex held in the SavedModel: unit vectors, the image -> product map, ids and texts."""

    def __init__(self, index, name="catalog"):
        super().__init__(name=name)
        self.num_products = int(index.num_products)
        self.text_vectors = tf.Variable(
            np.asarray(index.text_vectors, np.float32), trainable=False, name="text_vectors"
        )
        self.image_vectors = tf.Variable(
            np.asarray(index.image_vectors, np.float32), trainable=False, name="image_vectors"
        )
        self.image_product = tf.Variable(
            np.asarray(index.image_product, np.int32), trainable=False, name="image_product"
        )
        self.product_ids = tf.Variable(np.asarray(index.product_ids).astype(bytes), trainable=False, name="product_ids")
        self.texts = tf.Variable(
            np.array([t.encode("utf-8") for t in index.texts.tolist()], dtype=object), trainable=False, name="texts"
        )

    def top_k(self, scores, k):
        """scores [B, P] -> the result dict of the search signatures."""
        top = tf.math.top_k(scores, k=k, sorted=True)  # ties: the lower row first
        rows = tf.cast(top.indices, tf.int64)  # [B, K]
        return {
            "product_ids": tf.gather(self.product_ids, rows),
            "scores": top.values,
            "product_rows": rows,
            "texts": tf.gather(self.texts, rows),
        }

    def search_images(self, queries, k):
        """Text embeddings [B, D] against every image, best image per product -> results over products."""
        scores = tf.linalg.matmul(queries, self.image_vectors, transpose_b=True)  # [B, I]
        per_product = tf.math.segment_max(tf.transpose(scores), self.image_product)  # [P, B]
        return self.top_k(tf.transpose(per_product), k)

    def search_texts(self, queries, k):
        """Image embeddings [B, D] against the product texts."""
        return self.top_k(tf.linalg.matmul(queries, self.text_vectors, transpose_b=True), k)  # [B, P]


def _ranked(out, names, top_k):
    probabilities = out["probabilities"]  # [B, C]
    k = min(int(top_k), int(names.shape[0]))
    top = tf.math.top_k(probabilities, k=k, sorted=True)
    ids = tf.cast(top.indices, tf.int64)  # [B, K]
    return {
        "class_name": out["class_name"],
        "class_id": out["class_id"],
        "probabilities": probabilities,
        "top_class_names": tf.gather(names, ids),
        "top_class_ids": ids,
        "top_probabilities": top.values,
    }


def _function(fn, *specs):
    return tf.function(fn, input_signature=list(specs), autograph=False)


def raw_functions(module, images, index=None, top_k=DEFAULT_TOP_K):
    """{signature name: tf.function} of the raw signatures of `module` (see the module docstring)."""
    encoder = getattr(module, "text_encoder", None)
    base = dict(module._functions)
    kind = module.kind
    functions = {}
    needs_text = kind in (CLASSIFIER, PRETRAIN) or index is not None
    if needs_text and encoder is None:
        raise ValueError(
            f"the raw signatures of a {kind} export need the text encoder: give a vocab_file and keep text_signatures"
        )
    if index is not None and kind != RETRIEVAL:
        raise ValueError(f"index_dir applies to retrieval exports (task retrieval), not to a {kind} export")

    if kind == CLASSIFIER:
        names = tf.constant(module.class_names, tf.string)  # [C]
        classify = base["classify"]

        def classify_image(image_bytes):
            fields = images(image_bytes)
            text = encoder(tf.fill(tf.shape(image_bytes), ""))  # [CLS] [SEP]: the image alone
            return _ranked(classify(dict(text, **fields)), names, top_k)

        def classify_raw(text, image_bytes):
            fields = images(image_bytes)
            inputs = dict(fields, text=serving_inputs.check_text(text))
            return _ranked(base["classify_text"](inputs), names, top_k)

        functions["classify_image"] = _function(classify_image, image_bytes_spec())
        functions["classify_raw"] = _function(classify_raw, TEXT_SPEC, image_bytes_spec())
    elif kind == PRETRAIN:

        def itm_score_raw(text, image_bytes):
            inputs = dict(images(image_bytes), text=serving_inputs.check_text(text))
            return base["itm_score_text"](inputs)

        functions["itm_score_raw"] = _function(itm_score_raw, TEXT_SPEC, image_bytes_spec())
    elif kind == RETRIEVAL:

        def embed_image_raw(image_bytes):
            return base["embed_image"](images(image_bytes))

        functions["embed_image_raw"] = _function(embed_image_raw, image_bytes_spec())
        if encoder is not None:

            def itm_score_raw(text, image_bytes):
                fields = images(image_bytes)
                text = serving_inputs.check_text(text)
                _check_same_batch(text, image_bytes)
                return base["itm_score"](dict(fields, **encoder(text)))

            functions["itm_score_raw"] = _function(itm_score_raw, TEXT_SPEC, image_bytes_spec())
        if index is not None:
            catalog = CatalogVectors(index)
            module.catalog = catalog  # tracked: its variables are saved with the model's
            k = min(int(top_k), catalog.num_products)

            def search_text(text):
                queries = base["embed_text"](serving_inputs.check_text(text))["embedding"]  # [B, D]
                return catalog.search_images(queries, k)

            def search_image(image_bytes):
                return catalog.search_texts(embed_image_raw(image_bytes)["embedding"], k)

            functions["search_text"] = _function(search_text, TEXT_SPEC)
            functions["search_image"] = _function(search_image, image_bytes_spec())
    elif kind == CAPTIONER:

        def caption_image(image_bytes):
            return base["caption"](images(image_bytes))

        functions["caption_image"] = _function(caption_image, image_bytes_spec())
    else:
        raise TypeError(f"no raw signatures for a {kind} export")
    return functions


def _check_same_batch(text, image_bytes):
    n_text, n_images = tf.shape(text)[0], tf.shape(image_bytes)[0]
    tf.debugging.assert_equal(
        n_text, n_images, message="inputs text and image_bytes: batch sizes differ (one text per image)"
    )


def add_raw_signatures(module, settings, index=None, top_k=DEFAULT_TOP_K, extractor=None):
    """Adds the raw signatures of `module` (a built serving module) computed with `settings`; returns their names."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    images = RawImageFeatures(settings, module.patch_fields, extractor=extractor)
    module.raw_images = images  # tracked: the keras feature model asset
    functions = raw_functions(module, images, index=index, top_k=top_k)
    module.add_functions(functions, fields={"image_bytes": IMAGE_BYTES_FIELD, "text": TEXT_FIELD})
    return list(functions)
