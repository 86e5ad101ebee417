"""The index directory and `SearchIndex`, its reader.

manifest.json            format, version, the model's fingerprint and directory, the catalog (data_dir and
                         each shard's path and size), tokenizer settings, counts, and every file below with
                         its shape, dtype and size in bytes (checked on loading)
text_vectors.npy         [P, D] float32, one unit vector per product (its text)
image_vectors.npy        [I, D] float32, one unit vector per image, grouped by product
image_product.npy        [I] int32, the product row of each image (non-decreasing)
image_location.npy       [I, 2] int64, (catalog shard, record) of each image: re-ranking reads its features
product_ids.npy, texts.npy, image_ids.npy   the product ids, texts and image ids (unicode arrays)
text_input_ids.npy, text_input_mask.npy, text_segment_ids.npy   [P, T] int32, each product's tokenised text
"""

import json
import os

import numpy as np

from kaleido_tf.index.errors import SearchIndexError
from kaleido_tf.index.search import exact_top_k
from kaleido_tf.utils.io import atomic_directory

FORMAT = "kaleido_tf.index"
VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = (
    "text_vectors",
    "image_vectors",
    "image_product",
    "image_location",
    "product_ids",
    "texts",
    "image_ids",
    "text_input_ids",
    "text_input_mask",
    "text_segment_ids",
)


def write_index(output_dir, arrays, manifest):
    """Writes the arrays and the manifest into a temporary directory that then replaces `output_dir` whole."""
    files = {}
    with atomic_directory(output_dir) as tmp:
        for name in ARRAYS:
            path = os.path.join(tmp, name + ".npy")
            np.save(path, arrays[name], allow_pickle=False)
            files[name] = {
                "shape": list(arrays[name].shape),
                "dtype": arrays[name].dtype.str,
                "bytes": os.path.getsize(path),
            }
        manifest = dict(manifest, files=files)
        with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
            f.write("\n")


class SearchIndex:
    """A loaded index: vectors memory-mapped, ids and texts in memory. `SearchIndex.load(index_dir)`."""

    def __init__(self, index_dir, manifest, arrays):
        self.index_dir = index_dir
        self.manifest = manifest
        for name, value in arrays.items():
            setattr(self, name, value)
        self.fingerprint = manifest["fingerprint"]
        self.num_products = int(self.product_ids.size)
        self.num_images = int(self.image_ids.size)
        # the first image row of each product: images are grouped by product
        self.image_starts = np.searchsorted(self.image_product, np.arange(self.num_products)).astype(np.int64)
        self._product_row = {p: i for i, p in enumerate(self.product_ids.tolist())}

    @classmethod
    def load(cls, index_dir):
        path = os.path.join(index_dir, MANIFEST)
        if not os.path.isfile(path):
            raise SearchIndexError(
                f"--index_dir {index_dir}: no {MANIFEST}; not an index (build one with kaleido-index build)"
            )
        try:
            with open(path, encoding="utf-8") as f:
                manifest = json.load(f)
        except (OSError, ValueError) as e:
            raise SearchIndexError(f"{path}: unreadable ({e}); rebuild the index") from None
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise SearchIndexError(
                f"{path}: format {manifest.get('format')!r} version {manifest.get('version')!r}; this version reads "
                f"{FORMAT!r} version {VERSION}: rebuild the index"
            )
        arrays = {}
        for name in ARRAYS:
            spec = manifest["files"][name]
            file = os.path.join(index_dir, name + ".npy")
            if not os.path.isfile(file):
                raise SearchIndexError(f"{file}: missing from the index; rebuild it with kaleido-index build")
            size = os.path.getsize(file)
            if size != spec["bytes"]:
                raise SearchIndexError(
                    f"{file}: {size} bytes, the manifest says {spec['bytes']}: truncated or replaced; rebuild the index"
                )
            try:
                value = np.load(file, mmap_mode="r" if name.endswith("vectors") else None, allow_pickle=False)
            except (OSError, ValueError) as e:
                raise SearchIndexError(f"{file}: unreadable ({e}); rebuild the index") from None
            if list(value.shape) != spec["shape"] or value.dtype.str != spec["dtype"]:
                raise SearchIndexError(
                    f"{file}: shape {list(value.shape)} {value.dtype.str}, the manifest says {spec['shape']} "
                    f"{spec['dtype']}; rebuild the index"
                )
            arrays[name] = value
        p, i = arrays["text_vectors"].shape[0], arrays["image_vectors"].shape[0]
        if p < 1 or i < 1 or arrays["text_vectors"].shape[1] != arrays["image_vectors"].shape[1]:
            raise SearchIndexError(
                f"{index_dir}: a degenerate index ({p} products, {i} images, dims {arrays['text_vectors'].shape[1:]} "
                f"and {arrays['image_vectors'].shape[1:]}); rebuild it from a non-empty catalog"
            )
        product = arrays["image_product"]
        if np.any(np.diff(product) < 0) or product.min() < 0 or product.max() >= p or np.unique(product).size != p:
            raise SearchIndexError(
                f"{index_dir}/image_product.npy: images are not grouped by product; rebuild the index"
            )
        return cls(index_dir, manifest, arrays)

    # ------------------------------------------------------------------ checks
    def check_model(self, fingerprint, where="the model"):
        """Refuses a model other than the one that built the index."""
        if fingerprint != self.fingerprint:
            raise SearchIndexError(
                f"{self.index_dir} was built by a model with fingerprint {self.fingerprint}, but {where} has "
                f"{fingerprint}; search with the model that built the index (or rebuild the index with this one)"
            )

    def product_row(self, product_id):
        row = self._product_row.get(product_id)
        if row is None:
            example = ", ".join(self.product_ids[:3].tolist())
            raise SearchIndexError(
                f"--product_id {product_id!r} is not in the index ({self.num_products} products, e.g. {example})"
            )
        return row

    def first_image(self, product_row):
        return int(self.image_starts[product_row])

    def shard_paths(self):
        data_dir = self.manifest["data_dir"]
        paths = []
        for shard in self.manifest["shards"]:
            path = os.path.join(data_dir, shard["path"])
            if not os.path.isfile(path) or os.path.getsize(path) != shard["size"]:
                raise SearchIndexError(
                    f"{path}: the catalog shard the index was built from is missing or changed; re-ranking reads its "
                    f"image features: restore the catalog or rebuild the index"
                )
            paths.append(path)
        return paths

    # ------------------------------------------------------------------ search
    def search_images(self, queries, top_k):
        """Text queries [Q, D] against the images, best image per product -> (product rows, scores) [Q, k]."""
        return exact_top_k(queries, self.image_vectors, top_k, group_starts=self.image_starts)

    def search_texts(self, queries, top_k):
        """Image queries [Q, D] against the product texts -> (product rows, scores) [Q, k]."""
        return exact_top_k(queries, self.text_vectors, top_k)

    def best_images(self, query, product_rows):
        """For one text query [D]: the row of the best-scoring image of each product in `product_rows`."""
        out = []
        for row in product_rows:
            start = self.image_starts[row]
            end = self.image_starts[row + 1] if row + 1 < self.num_products else self.num_images
            out.append(int(start + np.argmax(np.asarray(self.image_vectors[start:end]) @ query)))
        return out
