"""Preprocessing survives SIGKILL: killed at random moments and rerun with the same command, it ends with
every example exactly once (the same counts and content hashes of the decoded examples as an uninterrupted
run), the same retrieval sets and the same reports."""

import collections
import hashlib
import json
import os
import signal

import numpy as np
import pytest

from kaleido_tf.datasets.tfrecord_reader import make_tfrecord_dataset
from kaleido_tf.preprocessors.cli import main as preprocess_main
from tests.preprocessors.factory import make_catalog, small_args
from tests.reliability.helpers import kill_at_random, new_rng, run

pytestmark = pytest.mark.slow

SHARD_DIRS = (
    "pretrain/train",
    "pretrain/valid",
    "finetune/train",
    "finetune/valid",
    "finetune/test",
    "retrieval/txt2img",
    "retrieval/img2txt",
)
# Every example written sleeps a little, so that the main and retrieval passes last a few seconds.
SLOW_WRITES = ["--slow", "kaleido_tf.datasets.tfrecord_writer:TFRecordShardWriter.write=0.01"]


def _example_hash(batch, index):
    h = hashlib.sha256()
    for name in sorted(batch):
        value = np.ascontiguousarray(batch[name][index])
        h.update(name.encode() + b"\0" + str(value.dtype).encode() + b"\0")
        h.update(b"".join(value.tolist()) if value.dtype == object else value.tobytes())
    return h.hexdigest()


def decoded_examples(out):
    """{shard directory: Counter of content hashes of its decoded examples}."""
    result = {}
    for sub in SHARD_DIRS:
        hashes = collections.Counter()
        for batch in make_tfrecord_dataset(os.path.join(out, sub), batch_size=64, training=False).as_numpy_iterator():
            n = len(next(iter(batch.values())))
            hashes.update(_example_hash(batch, i) for i in range(n))
        result[sub] = hashes
    return result


def _reports(out):
    def lines(path):
        with open(os.path.join(out, path), encoding="utf-8") as f:
            return f.read().splitlines()

    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    return {
        "examples": {task: summary[task].get("examples") for task in ("pretrain", "finetune")},
        "retrieval": {d: summary["retrieval"][d]["examples"] for d in ("txt2img", "img2txt")},
        "rejected": lines("rejected.tsv"),
        "sets": {d: lines(f"retrieval/{d}/sets.part-00000-of-00001.jsonl") for d in ("txt2img", "img2txt")},
    }


def test_killed_preprocessing_ends_with_every_example_exactly_once(tmp_path):
    catalog, _ = make_catalog(str(tmp_path / "catalog"), num_products=40, splits=["train", "valid", "test"])
    reference = str(tmp_path / "reference")
    assert preprocess_main(small_args(catalog, reference)) == 0
    expected = decoded_examples(reference)
    assert sum(sum(c.values()) for c in expected.values()) > 100
    assert all(count == 1 for c in expected.values() for count in c.values()), "examples must be distinct"

    out = str(tmp_path / "killed")
    command = [
        "-m",
        "tests.reliability.slow_child",
        *SLOW_WRITES,
        "--",
        "kaleido_tf.preprocessors.cli",
        *small_args(catalog, out),
    ]
    rng, seed = new_rng()
    ready = lambda: os.path.exists(os.path.join(out, "_shards", "rejected.catalog.tsv"))  # noqa: E731  index done
    kills = []
    for _ in range(2):
        code, output, delay = kill_at_random(command, ready, 3.0, rng)
        kills.append(f"{delay:.2f}s:{'killed' if code == -signal.SIGKILL else code}")
        assert code in (0, -signal.SIGKILL), output[-3000:]
    where = f"(kill seed {seed}; kills after indexing at {', '.join(kills)})"
    assert any(k.endswith("killed") for k in kills), f"no kill landed {where}"

    code, output = run(command)
    assert code == 0, f"{where}\n{output[-3000:]}"
    got = decoded_examples(out)
    for sub in SHARD_DIRS:
        assert got[sub] == expected[sub], (
            f"{sub}: {sum(got[sub].values())} examples, expected {sum(expected[sub].values())} {where}"
        )
    assert _reports(out) == _reports(reference), where
