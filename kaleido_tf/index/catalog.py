"""Reading a preprocessed catalog for search: the finetune shards (one example per product image, with the
product's text) of one or more splits, shard by shard, in the order the preprocessor wrote them.

`--data_dir` is either a shard directory (with schema.json) or a preprocessing output root, from which the
`finetune/<split>` directories of the chosen splits are read.
"""

import json
import os

import numpy as np

from kaleido_tf.datasets.tfrecord_reader import find_tfrecord_files, make_tfrecord_dataset
from kaleido_tf.datasets.tfrecord_writer import read_schema_json
from kaleido_tf.evaluators.retrieval_fast import TEXT_FIELDS, image_fields
from kaleido_tf.index.errors import SearchIndexError

SCHEMA_JSON = "schema.json"
ID_FIELDS = ("text_prod_id", "prod_img_id", "prod_desc")


def _strings(values):
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(values).reshape(-1).tolist()]


class CatalogShard:
    """One shard: `key` (names it inside the index, e.g. "test/part-00000-of-00004"), `path`, `size` in bytes."""

    def __init__(self, key, path):
        self.key = key
        self.path = path
        self.size = os.path.getsize(path)

    def describe(self, data_dir):
        return {"key": self.key, "path": os.path.relpath(self.path, data_dir), "size": self.size}


def catalog_sources(data_dir, splits=("train", "valid", "test")):
    """-> [(name, shard directory)]: data_dir itself when it holds schema.json, else data_dir/finetune/<split>."""
    if not os.path.isdir(data_dir):
        raise SearchIndexError(
            f"--data_dir {data_dir}: no such directory (give a preprocessing output or a shard directory)"
        )
    if os.path.isfile(os.path.join(data_dir, SCHEMA_JSON)):
        return [("", data_dir)]
    sources = []
    for split in splits:
        directory = os.path.join(data_dir, "finetune", split)
        if os.path.isfile(os.path.join(directory, SCHEMA_JSON)):
            sources.append((split, directory))
    if not sources:
        raise SearchIndexError(
            f"--data_dir {data_dir}: neither a shard directory (no {SCHEMA_JSON}) nor a preprocessing output with "
            f"finetune/{{{','.join(splits)}}}/{SCHEMA_JSON}; run kaleido-preprocess --task finetune first"
        )
    return sources


def catalog_shards(data_dir, splits=("train", "valid", "test")):
    """Every shard of the catalog, in order, after checking that each source is complete and readable."""

    shards = []
    for name, directory in catalog_sources(data_dir, splits):
        try:
            files, _ = find_tfrecord_files(directory)
            meta = read_schema_json(directory)
            schema = meta.schema
        except (OSError, ValueError) as e:
            raise SearchIndexError(f"{directory}: {e}") from None
        missing = [f for f in TEXT_FIELDS + ID_FIELDS if f not in schema.names]
        if missing:
            raise SearchIndexError(
                f"{directory}/{SCHEMA_JSON}: the shards lack {missing}; search reads finetune shards "
                f"(kaleido-preprocess --task finetune)"
            )
        per_shard = int(meta.counts.get("num_examples", 0)) / max(len(files), 1)
        for path in files:
            stem = os.path.basename(path).split(".tfrecord")[0]
            shard = CatalogShard(f"{name}/{stem}" if name else stem, path)
            shard.expected_examples = per_shard  # for the progress bar only
            shards.append(shard)
    return shards


def read_settings(data_dir):
    """The tokenizer and text length the catalog was preprocessed with (summary.json), or {} when unknown."""
    for candidate in (os.path.join(data_dir, "summary.json"), os.path.join(data_dir, "..", "..", "summary.json")):
        if os.path.isfile(candidate):
            with open(candidate, encoding="utf-8") as f:
                summary = json.load(f)
            settings = summary.get("settings", {})
            keep = ("tokenizer", "vocab", "spm_model", "lower_case", "text_length")
            return {k: settings[k] for k in keep if k in settings}
    return {}


def read_shard(path, batch_size=64):
    """Yields the shard's examples in batches: dicts of numpy arrays (strings as lists of str)."""

    dataset = make_tfrecord_dataset(path, batch_size=batch_size, training=False)
    for batch in dataset.as_numpy_iterator():
        yield {k: (_strings(v) if v.dtype.kind in "OSU" else v) for k, v in batch.items()}


def model_features(batch, rows=None):
    """The numeric fields a model reads (text fields + image fields) of `batch`, optionally a row subset."""
    keep = set(TEXT_FIELDS) | set(image_fields())
    out = {}
    for key, value in batch.items():
        if key in keep and isinstance(value, np.ndarray):
            out[key] = value if rows is None else value[rows]
    return out


def image_features_at(shard_paths, locations, batch_size=64):
    """The image fields of the records at `locations` ([(shard index, record index)]) -> dict of [n, ...] arrays
    in the order given; shards are read once each."""
    wanted = {}
    for order, (shard, record) in enumerate(locations):
        wanted.setdefault(int(shard), {}).setdefault(int(record), []).append(order)
    keep = set(image_fields())
    rows = [None] * len(locations)
    for shard, records in wanted.items():
        start = 0
        for batch in read_shard(shard_paths[shard], batch_size):
            count = len(batch["text_prod_id"])
            for record in [r for r in records if start <= r < start + count]:
                row = {k: v[record - start] for k, v in batch.items() if k in keep}
                for order in records[record]:
                    rows[order] = row
            start += count
        lost = [r for r in records if r >= start]
        if lost:
            raise SearchIndexError(
                f"{shard_paths[shard]} has {start} records, the index points at record {lost[0]}: the catalog "
                f"changed since the index was built; rebuild it"
            )
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}
