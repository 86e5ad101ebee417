"""`build_index`: embeds every image and every product text of a preprocessed catalog.

Resumable and atomic:
- each catalog shard is embedded into `<work>/parts/<shard>.npz`, written under a temporary name and renamed,
  so a part is complete or absent; a rerun skips the parts whose model fingerprint and source shard size match.
  `<work>` is `.<output name>.building` beside the output directory, locked while a build runs.
- the index itself is assembled in a temporary directory that replaces `output_dir` in one step
  (`kaleido_tf.utils.io.atomic_directory`); then the work directory is removed.
A killed build rerun with the same model and catalog ends with the same files as an uninterrupted one.
"""

import contextlib
import logging
import os
import shutil

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from kaleido_tf.evaluators.retrieval_fast import TEXT_FIELDS, image_fields
from kaleido_tf.index import catalog
from kaleido_tf.index.errors import SearchIndexError
from kaleido_tf.index.fingerprint import model_fingerprint
from kaleido_tf.index.store import FORMAT, VERSION, SearchIndex, write_index
from kaleido_tf.utils import file_lock
from kaleido_tf.utils.io import atomic_write

logger = logging.getLogger(__name__)
NORM_TOLERANCE = 1e-3  # embeddings must have unit length within this


def _as_numpy(x):
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x, np.float32)


def _to_tensors(features):

    return {k: tf.constant(v) for k, v in features.items()}


def _embed_shard(model, shard, batch_size, progress_bar):
    """-> dict of arrays: the image vectors of every record, the text vectors of each product's first record."""
    image_keys = set(image_fields())
    parts = {"image_vectors": [], "text_vectors": [], "text_features": {k: [] for k in TEXT_FIELDS}}
    image_ids, image_products, text_products, texts = [], [], [], []
    seen = set()
    for batch in catalog.read_shard(shard.path, batch_size):
        ids = batch["text_prod_id"]
        images = {k: v for k, v in batch.items() if k in image_keys}
        parts["image_vectors"].append(_as_numpy(model.embed_image(_to_tensors(images))))
        image_ids += batch["prod_img_id"]
        image_products += ids
        new = [i for i, p in enumerate(ids) if not (p in seen or seen.add(p))]
        if new:
            text = {k: batch[k][new] for k in TEXT_FIELDS}
            parts["text_vectors"].append(_as_numpy(model.embed_text(_to_tensors(text))))
            for k in TEXT_FIELDS:
                parts["text_features"][k].append(text[k].astype(np.int32))
            text_products += [ids[i] for i in new]
            texts += [batch["prod_desc"][i] for i in new]
        if progress_bar is not None:
            progress_bar.update(len(ids))
    if not image_ids:
        dim = 0
        out = {"image_vectors": np.zeros((0, dim), np.float32), "text_vectors": np.zeros((0, dim), np.float32)}
        out.update({f"text_{k}": np.zeros((0, 0), np.int32) for k in TEXT_FIELDS})
    else:
        out = {k: np.concatenate(parts[k]) for k in ("image_vectors", "text_vectors")}
        out.update({f"text_{k}": np.concatenate(v) for k, v in parts["text_features"].items()})
    out.update(
        image_ids=np.asarray(image_ids, dtype=object).astype(str),
        image_products=np.asarray(image_products, dtype=object).astype(str),
        text_products=np.asarray(text_products, dtype=object).astype(str),
        texts=np.asarray(texts, dtype=object).astype(str),
    )
    return out


def _part_path(work, shard):
    return os.path.join(work, "parts", shard.key.replace("/", "__") + ".npz")


def _load_part(path, fingerprint, shard):
    """The stored part, or None when absent, unreadable or made by another model or from another shard file."""
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            part = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as e:
        logger.warning("re-embedding %s: its part file %s is unreadable (%s)", shard.key, path, e)
        return None
    if str(part.pop("fingerprint")) != fingerprint or int(part.pop("source_size")) != shard.size:
        logger.warning("re-embedding %s: its part was made by another model or from another shard file", shard.key)
        return None
    return part


def _save_part(path, part, fingerprint, shard):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_write(path, "wb") as f:
        np.savez(f, fingerprint=np.asarray(fingerprint), source_size=np.asarray(shard.size), **part)


@contextlib.contextmanager
def _locked(work):
    path = os.path.join(work, "lock")
    try:
        file_lock.acquire(path)
    except file_lock.LockBusyError as e:
        raise SearchIndexError(
            f"{work} is locked: {file_lock.describe_holder(e.holder)} builds this index (another kaleido-index "
            f"build); wait for it to finish"
        ) from None
    try:
        yield
    finally:
        file_lock.release(path)


def _check_vectors(name, vectors, dim=None):
    if vectors.ndim != 2 or vectors.shape[1] < 1 or (dim is not None and vectors.shape[1] != dim):
        raise SearchIndexError(f"the model's {name} have shape {vectors.shape}; expected [N, D] with one D for both")
    if not np.all(np.isfinite(vectors)):
        raise SearchIndexError(f"the model's {name} hold NaN or Inf; check the checkpoint")
    norms = np.linalg.norm(vectors, axis=1)
    bad = np.flatnonzero(np.abs(norms - 1.0) > NORM_TOLERANCE)
    if bad.size:
        raise SearchIndexError(
            f"the model's {name} are not unit length (row {bad[0]}: norm {norms[bad[0]]:.4f}); embed_text and "
            f"embed_image must L2-normalise"
        )


def assemble(parts):
    """Concatenates the shard parts: products in order of first appearance (the first text of a product id
    wins), images grouped by product in catalog order. -> dict of index arrays."""
    product_row, texts, text_vectors, text_features = {}, [], [], {k: [] for k in TEXT_FIELDS}
    image_rows = []  # (product row, shard index, record index, global order)
    image_vectors, image_ids = [], []
    for shard_index, part in enumerate(parts):
        for j, product in enumerate(part["text_products"].tolist()):
            if product not in product_row:
                product_row[product] = len(product_row)
                texts.append(part["texts"][j])
                text_vectors.append(part["text_vectors"][j])
                for k in TEXT_FIELDS:
                    text_features[k].append(part[f"text_{k}"][j])
        for record, product in enumerate(part["image_products"].tolist()):
            image_rows.append((product_row[product], shard_index, record, len(image_rows)))
            image_vectors.append(part["image_vectors"][record])
            image_ids.append(part["image_ids"][record])
    if not product_row:
        raise SearchIndexError("the catalog has no examples: nothing to index")
    rows = np.asarray(image_rows, np.int64)  # [Ni, 4]
    order = np.lexsort((rows[:, 3], rows[:, 0]))  # by product, then catalog order
    rows = rows[order]
    image_vectors = np.stack(image_vectors)[order]
    text_vectors = np.stack(text_vectors)
    _check_vectors("image embeddings", image_vectors)
    _check_vectors("text embeddings", text_vectors, dim=image_vectors.shape[1])
    products = np.asarray(list(product_row), dtype=str)
    return {
        "text_vectors": text_vectors.astype(np.float32),
        "image_vectors": image_vectors.astype(np.float32),
        "image_product": rows[:, 0].astype(np.int32),
        "image_location": rows[:, 1:3].astype(np.int64),
        "product_ids": products,
        "texts": np.asarray(texts, dtype=str),
        "image_ids": np.asarray(image_ids, dtype=str)[order],
        **{f"text_{k}": np.stack(v).astype(np.int32) for k, v in text_features.items()},
    }


def build_index(
    model,
    data_dir,
    output_dir,
    splits=("train", "valid", "test"),
    batch_size=64,
    model_dir=None,
    progress=None,
    overwrite=False,
    stop_after_shards=None,
):
    """Embeds the catalog under `data_dir` with `model` into the index directory `output_dir`.

    Args:
        model: the search interface (embed_text, embed_image; itm_logits for re-ranking later).
        data_dir: a finetune shard directory, or a preprocessing output (its finetune/<split> directories).
        splits: the splits read from a preprocessing output.
        batch_size: examples per model call.
        model_dir: where the model came from (recorded, so search can load it again).
        progress: show a progress bar (rate, ETA); None: only on a terminal.
        overwrite: replace an existing index (else an existing output_dir is an error).
        stop_after_shards: testing aid: stop (raise KeyboardInterrupt) after embedding this many new shards.
    Returns the loaded SearchIndex.
    """

    if batch_size < 1:
        raise SearchIndexError(f"--batch_size must be >= 1, got {batch_size}")
    output_dir = os.path.abspath(output_dir)
    data_dir = os.path.abspath(data_dir)
    if os.path.exists(output_dir) and not overwrite:
        raise SearchIndexError(f"--output_dir {output_dir} already exists; pass --overwrite to replace it")
    shards = catalog.catalog_shards(data_dir, splits)
    fingerprint = model_fingerprint(model)
    parent, base = os.path.split(output_dir)
    work = os.path.join(parent, f".{base}.building")
    total = round(sum(s.expected_examples for s in shards)) or None
    with _locked(work):
        parts, fresh = [], 0
        show = os.isatty(2) if progress is None else bool(progress)
        bar = tqdm(total=total, unit="example", desc="embedding catalog", disable=not show)
        with bar:
            for shard in shards:
                path = _part_path(work, shard)
                part = _load_part(path, fingerprint, shard)
                if part is None:
                    if stop_after_shards is not None and fresh >= stop_after_shards:
                        raise KeyboardInterrupt(f"stopped after {fresh} shards (stop_after_shards)")
                    part = _embed_shard(model, shard, batch_size, bar)
                    _save_part(path, part, fingerprint, shard)
                    fresh += 1
                else:
                    bar.update(part["image_ids"].size)
                parts.append(part)
        arrays = assemble(parts)
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "fingerprint": fingerprint,
            "model_dir": os.path.abspath(model_dir) if model_dir else None,
            "data_dir": data_dir,
            "shards": [s.describe(data_dir) for s in shards],
            "settings": catalog.read_settings(data_dir),
            "text_length": int(arrays["text_input_ids"].shape[1]),
            "dim": int(arrays["text_vectors"].shape[1]),
            "num_products": int(arrays["product_ids"].size),
            "num_images": int(arrays["image_ids"].size),
        }
        write_index(output_dir, arrays, manifest)
    shutil.rmtree(work, ignore_errors=True)
    logger.info(
        "index of %d products, %d images written to %s", manifest["num_products"], manifest["num_images"], output_dir
    )
    return SearchIndex.load(output_dir)
