"""Retrieval evaluation end to end: score every (query, candidate) pair with the ITM head, write the original
result file, and compute Accuracy, Rank@K and AUC from it."""

import glob
import json
import os

from tqdm.auto import tqdm

from kaleido_tf.datasets.errors import DataError
from kaleido_tf.evaluators.retrieval import check_query_type, score_retrieval
from kaleido_tf.evaluators.retrieval_format import RETRIEVAL_TYPES, RetrievalResultWriter, read_retrieval_results

PASSTHROUGH = ("text_prod_id", "image_prod_id", "prod_img_id", "nx_sent_labels")


def shard_direction(directory):
    """(direction, evidence) of a preprocessed retrieval shard directory, or (None, None) when unknown.

    The direction is the `direction` field of its `sets.*.jsonl` files, else the directory's name
    (`retrieval/txt2img`, `retrieval/img2txt`)."""
    for sets in sorted(glob.glob(os.path.join(directory, "sets.*.jsonl"))):
        with open(sets, encoding="utf-8") as f:
            line = f.readline()
        if line.strip():
            try:
                direction = json.loads(line).get("direction")
            except (ValueError, AttributeError):
                direction = None
            if direction in RETRIEVAL_TYPES:
                return direction, f"{sets}:1 direction"
    name = os.path.basename(os.path.normpath(directory))
    if name in RETRIEVAL_TYPES and os.path.exists(os.path.join(directory, "schema.json")):
        return name, f"{os.path.join(directory, 'schema.json')} beside it"
    return None, None


def check_retrieval_input(input_fp, kind):
    """Refuses retrieval shards of the other direction: `input_fp` (a directory, a file or a glob, comma-
    separated) against `kind`; raises DataError (a ValueError) naming both."""
    for part in str(input_fp or "").split(","):
        part = part.strip()
        if not part:
            continue
        directory = part if os.path.isdir(part) else os.path.dirname(part) or "."
        direction, evidence = shard_direction(directory)
        if direction is not None and direction != kind:
            raise DataError(
                f"{part}: these are {direction} retrieval shards ({evidence}), not {kind}: "
                f"use --type {direction} or the retrieval/{kind} shards"
            )


def predict_retrieval(predictor, dataset_fn, kind, result_path, progress=True):
    """Runs `predictor.predict` (an engines.Predictor or a Trainer) over a retrieval dataset; returns the metrics.

    The result file is written atomically in the original format, so `kaleido-eval-retrieval` rescores it.
    """

    if kind not in ("img2txt", "txt2img"):
        raise ValueError(f"retrieval type must be img2txt or txt2img, got {kind!r}")
    with RetrievalResultWriter(result_path) as writer:
        for out in tqdm(
            predictor.predict(dataset_fn, passthrough=PASSTHROUGH),
            desc=f"retrieval {kind}",
            unit="batch",
            disable=not progress,
        ):
            missing = [k for k in PASSTHROUGH if k not in out]
            if missing:
                raise ValueError(f"the retrieval input lacks {missing}: use the retrieval schema")
            writer.write_batch(
                out["text_prod_id"], out["image_prod_id"], out["prod_img_id"], out["nx_sent_labels"], out["nsp_logits"]
            )
    results = read_retrieval_results(result_path)
    try:
        check_query_type(results, kind)
    except ValueError as e:
        raise DataError(f"{result_path}: {e}") from None
    return score_retrieval(results, type=kind)
