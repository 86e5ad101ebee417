"""The run-level outputs written after the passes: the catalog's rejections, every shard directory's
schema.json, the merged rejected.tsv and summary.json (counts over the finished shards)."""

import json
import os

import numpy as np

from kaleido_tf.datasets.tfrecord_writer import write_schema_json
from kaleido_tf.preprocessors.catalog import CatalogError
from kaleido_tf.preprocessors.hashing import SPLITS
from kaleido_tf.preprocessors.rejections import RejectionLog
from kaleido_tf.preprocessors.shard_book import DIRECTIONS, FINETUNE_SPLITS, PRETRAIN_SPLITS, SHARD_DIR, TASK_ORDER
from kaleido_tf.preprocessors.tally import add_counts
from kaleido_tf.utils.io import atomic_write_text


def write_catalog_rejections(ctx):
    """_shards/rejected.catalog.tsv: the catalog's bad records and later duplicates."""
    log = RejectionLog()
    for err in ctx.index.catalog_errors:
        log.add(ctx.location(err.line), "", "", "catalog", err.reason)
    for line, offset, first_line in ctx.index.duplicates:
        try:
            pid = ctx.index.reader.read_at(offset, line).product_id
        except CatalogError:
            pid = ""
        log.add(ctx.location(line), pid, "", "catalog", f"duplicate product_id (first occurrence at line {first_line})")
    log.write(ctx.book.path(SHARD_DIR, "rejected.catalog.tsv"))
    return log


def write_schema_files(ctx, task):
    """schema.json of each of `task`'s shard directories, with the counts of the finished shards."""
    c = ctx.config
    markers = ctx.book.done_markers(task)
    schema = ctx.schema(task)
    if task == "retrieval":
        dirs = {d: ctx.book.path("retrieval", d) for d in DIRECTIONS}
        counts = {d: sum(m["counts"][d]["examples"] for m in markers.values()) for d in DIRECTIONS}
    else:
        splits = PRETRAIN_SPLITS if task == "pretrain" else FINETUNE_SPLITS
        dirs = {s: ctx.book.path(task, s) for s in splits}
        counts = {s: sum(m["counts"]["examples"][s] for m in markers.values()) for s in splits}
    for key, directory in dirs.items():
        if os.path.isdir(directory):
            write_schema_json(
                directory,
                schema,
                c.feature_dtype,
                c.compression,
                num_examples=counts[key],
                num_shards=c.num_shards,
                num_shards_done=len(markers),
            )


def retrieval_notes(retrieval, config):
    """The summary's retrieval notes: queries with wider or fewer negatives, no query at all."""
    notes = []
    for d in DIRECTIONS:
        q = retrieval.get(d, {}).get("queries", {})
        if q.get("negatives beyond the subcategory"):
            notes.append(
                f"{d}: {q['negatives beyond the subcategory']} of {q.get('written', 0)} queries "
                f"took negatives beyond their subcategory (too few products in it)"
            )
        if q.get("fewer negatives than asked"):
            notes.append(
                f"{d}: {q['fewer negatives than asked']} queries have fewer than "
                f"{config.retrieval_negatives} negatives (too few products)"
            )
        same_file = retrieval.get(d, {}).get("candidates skipped", {}).get("same image file as the query")
        if same_file:
            notes.append(
                f"{d}: {same_file} candidates were skipped because they share a byte-identical image file "
                f"with their query (the same picture in two products)"
            )
    if not retrieval.get("queries_selected"):
        notes.append(
            f"no retrieval queries: the '{config.retrieval_split}' split has no product in the finished "
            f"shards (see --retrieval_split, --test_fraction)"
        )
    return notes


def catalog_notes(index):
    """Warnings about a catalog whose categories make the finetuning scores meaningless."""
    notes = []
    if len(index.categories) == 1:
        notes.append(
            f"the catalog has one category ({index.categories[0]!r}): category prediction is trivial and "
            f"retrieval negatives all come from it"
        )
    test = SPLITS.index("test")
    for code, name in enumerate(index.categories):
        splits = index.split[index.cat == code]
        if len(splits) and np.all(splits == test):
            notes.append(
                f"category {name!r} has only test products ({len(splits)}): training and validation never "
                f"see it, so its test scores are meaningless"
            )
    return notes


def write_summary(ctx):
    """Merges the rejections into rejected.tsv and writes summary.json; returns the summary dict."""
    c = ctx.config
    shard_dir = ctx.book.path(SHARD_DIR)
    rejected_files = [os.path.join(shard_dir, "rejected.catalog.tsv")]
    for name in sorted(os.listdir(shard_dir)):
        if name.startswith(("rejected.main.", "rejected.retrieval.")) and name.endswith(".tsv"):
            rejected_files.append(os.path.join(shard_dir, name))
    merged = RejectionLog.merge(rejected_files)
    merged.write(ctx.book.path("rejected.tsv"))

    idx = ctx.index
    split_counts = {s: int(np.sum(idx.split == i)) for i, s in enumerate(SPLITS)}
    summary = {
        "catalog": os.path.basename(c.catalog),
        "fingerprint": ctx.book.fingerprint,
        "catalog_index": {
            "records": idx.num_records,
            "products": len(idx),
            "bad_records": len(idx.catalog_errors),
            "duplicate_ids": len(idx.duplicates),
            "splits": split_counts,
            "categories": len(idx.categories),
            "subcategories": len(idx.subcategories),
        },
        "shards": {"num_shards": c.num_shards},
        "rejected": {"lines": len(merged), "by_stage_and_reason": merged.counts()},
        "tokenizer": ctx.tokenizer.describe(),
        "settings": {k: v for k, v in c.to_dict().items() if k not in ("progress",)},
    }
    notes = catalog_notes(idx)
    if notes:
        summary["catalog_index"]["notes"] = notes
    if ctx.images.extractor_built is not None:
        summary["feature_extractor"] = ctx.images.extractor_built.describe()
    for task in TASK_ORDER:
        markers = ctx.book.done_markers(task)
        if not markers:
            continue
        summary["shards"][task] = sorted(markers)
        total = {}
        for marker in markers.values():
            add_counts(total, marker["counts"])
        total.pop("rejected", None)
        summary[task] = total
    if "retrieval" in summary:
        summary["retrieval"]["notes"] = retrieval_notes(summary["retrieval"], c)
    atomic_write_text(ctx.book.path("summary.json"), json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    return summary
