"""The Backend of `kaleido-serve` answered from exported SavedModels and a catalog index.

`load_backend(export_dir, index_dir, catalog)` finds the exports below `export_dir` (one base path, or a folder
of them), reads the task each was exported for from its `assets.extra/kaleido_export.json`, and routes:

| question | answered by |
|---|---|
| text search | the retrieval export's `embed_text` (raw strings -> unit vectors) against the index's image vectors |
| more like this | the index's image vectors (the product's first image against every product's best image) |
| photo search | the retrieval export's `embed_image_raw` (image bytes -> unit vector) against the index |
| classes of a photo | `classify_image` of the category / subcategory exports |
| caption of a photo | `caption_image` of the caption export |

A question whose signature no export carries is refused with 501 and a message saying which export to add.
The models are loaded once, at start; each request runs one signature call.
"""

import json
import logging
import os

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401 (registers the in-graph WordPiece ops the exports use)

from kaleido_tf.apps.serve.backend import Backend
from kaleido_tf.apps.serve.catalog_store import CatalogStore
from kaleido_tf.apps.serve.errors import RequestError
from kaleido_tf.index.errors import SearchIndexError
from kaleido_tf.index.search import exact_scores, top_k_rows
from kaleido_tf.index.store import SearchIndex

EXPORT_INFO = os.path.join("assets.extra", "kaleido_export.json")
CLASS_HEADS = {"catepred": "category", "subcatepred": "subcategory"}  # export task -> the page's head
_LOG = logging.getLogger("kaleido_tf.serve")


def _latest_version(base):
    versions = [int(d) for d in os.listdir(base) if d.isdigit() and os.path.isdir(os.path.join(base, d))]
    return os.path.join(base, str(max(versions))) if versions else None


def find_exports(export_dir):
    """[(path of a SavedModel version, its kaleido_export.json)] below `export_dir`."""
    if not os.path.isdir(export_dir):
        raise FileNotFoundError(f"--export_dir {export_dir}: no such directory")
    candidates = []
    if os.path.isfile(os.path.join(export_dir, "saved_model.pb")):
        candidates.append(export_dir)
    elif _latest_version(export_dir):
        candidates.append(_latest_version(export_dir))
    else:
        for name in sorted(os.listdir(export_dir)):
            version = (
                _latest_version(os.path.join(export_dir, name))
                if os.path.isdir(os.path.join(export_dir, name))
                else None
            )
            if version:
                candidates.append(version)
    exports = []
    for path in candidates:
        info_path = os.path.join(path, EXPORT_INFO)
        if not os.path.isfile(info_path):
            raise ValueError(f"{path}: no {EXPORT_INFO}; export the model with kaleido-export")
        with open(info_path, encoding="utf-8") as f:
            exports.append((path, json.load(f)))
    if not exports:
        raise ValueError(
            f"--export_dir {export_dir}: no SavedModel found (expected E/<version>/ or E/<name>/<version>/)"
        )
    return exports


class SavedModelBackend(Backend):
    """Args: signatures: {name: concrete function} gathered from the loaded exports; heads: {head: classify
    function}; index: a SearchIndex (None: no search); loaded: [(path, task)] for /api/health."""

    def __init__(self, signatures, heads, index, loaded):
        self.signatures = signatures
        self.heads = heads
        self.index = index
        self.loaded = loaded

    # ------------------------------------------------------------------ helpers
    def _signature(self, name, what):
        fn = self.signatures.get(name)
        if fn is None:
            raise RequestError(
                501, f"{what} needs an export with the `{name}` signature; none of {self._paths()} has it"
            )
        return fn

    def _paths(self):
        return ", ".join(path for path, _ in self.loaded) or "the exports"

    def _need_index(self):
        if self.index is None:
            raise RequestError(501, "search needs a catalog index: start kaleido-serve with --index_dir")
        return self.index

    @staticmethod
    def _call(fn, value, dtype):
        (name,) = fn.structured_input_signature[1].keys()
        try:
            return fn(**{name: tf.constant(value, dtype)})
        except tf.errors.InvalidArgumentError as e:
            raise RequestError(400, e.message.strip().splitlines()[0]) from None

    def _products(self, query_vector, top_k, skip_row=None):
        index = self._need_index()
        scores = exact_scores(query_vector[None, :], index.image_vectors, index.image_starts)  # [1, P]
        if skip_row is not None:
            scores[0, skip_row] = -np.inf
        rows, values = top_k_rows(scores, min(top_k + (skip_row is not None), index.num_products))
        hits = [(str(index.product_ids[r]), float(v)) for r, v in zip(rows[0], values[0]) if r != skip_row]
        return hits[:top_k]

    # ------------------------------------------------------------------ Backend
    def search_text(self, query, top_k):
        out = self._call(self._signature("embed_text", "text search"), [query], tf.string)
        return self._products(np.asarray(out["embedding"], np.float32)[0], top_k)

    def search_image(self, image_bytes, top_k):
        out = self._call(self._signature("embed_image_raw", "photo search"), [image_bytes], tf.string)
        return self._products(np.asarray(out["embedding"], np.float32)[0], top_k)

    def similar(self, product_id, top_k):
        index = self._need_index()
        try:
            row = index.product_row(product_id)
        except SearchIndexError:
            raise RequestError(404, f"product {product_id!r} is not in the search index") from None
        vector = np.asarray(index.image_vectors[index.first_image(row)], np.float32)
        return self._products(vector, top_k, skip_row=row)

    def classify_image(self, image_bytes):
        result = {}
        for head, fn in self.heads.items():
            out = self._call(fn, [image_bytes], tf.string)
            names = [n.decode("utf-8") for n in np.asarray(out["top_class_names"])[0]]  # best first
            probabilities = np.asarray(out["top_probabilities"], np.float32)[0]
            result[head] = [(name, float(p)) for name, p in zip(names, probabilities)]
        return result

    def caption_image(self, image_bytes):
        fn = self.signatures.get("caption_image")
        if fn is None:
            return None
        out = self._call(fn, [image_bytes], tf.string)
        return np.asarray(out["caption"])[0].decode("utf-8")

    def describe(self):
        return {
            "exports": [{"path": path, "task": task} for path, task in self.loaded],
            "signatures": sorted(self.signatures),
            "classes": sorted(self.heads),
            "index_products": None if self.index is None else self.index.num_products,
        }


def load_backend(export_dir, index_dir=None, catalog=None):
    """(SavedModelBackend, CatalogStore) from the command line's directories; raises ValueError/OSError."""
    signatures, heads, loaded = {}, {}, []
    for path, info in find_exports(export_dir):
        task = info.get("task", "pretrain")
        module = tf.saved_model.load(path)
        loaded.append((path, task))
        for name, fn in module.signatures.items():
            if name == "classify_image":
                head = CLASS_HEADS.get(task, task)
                if head in heads:
                    raise ValueError(f"{path}: a second `{head}` classifier export; keep one per head")
                heads[head] = fn
            elif name not in signatures or task == "retrieval":  # the retrieval export's embeddings win
                signatures[name] = fn
        _LOG.info("loaded %s (%s): %s", path, task, ", ".join(sorted(module.signatures)))
    index = SearchIndex.load(index_dir) if index_dir else None
    if catalog is None:
        catalog = index.manifest.get("catalog") if index is not None else None
    if not catalog:
        raise ValueError("--catalog is needed (the catalog file the products come from)")
    store = CatalogStore.from_file(catalog)
    if index is not None:
        missing = [p for p in index.product_ids.tolist()[:1000] if p not in store]
        if missing:
            raise ValueError(
                f"--index_dir {index_dir}: products such as {missing[0]!r} are not in --catalog {catalog}; "
                "give the catalog the index was built from"
            )
    return SavedModelBackend(signatures, heads, index, loaded), store
