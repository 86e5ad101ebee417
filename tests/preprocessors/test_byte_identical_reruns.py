"""Two runs of the same preprocessing, in two processes, write byte-identical shards (docs/preprocessing.md).

The protobuf map of a tf.train.Example's features used to be serialised in an order that changes from one
process to the next (decoded content equal, bytes not); the writer now serialises deterministically (keys
sorted)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from kaleido_tf.datasets import Schema
from kaleido_tf.datasets.tfrecord_writer import encode_example
from tests.apps.tiny_data import _example, schema_string, tiny_config
from tests.preprocessors.factory import make_catalog, small_args

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_examples_are_serialised_with_sorted_feature_keys():
    schema = Schema.parse(schema_string("finetune"))
    record = encode_example(_example(np.random.default_rng(0), tiny_config(), "finetune"), schema)
    assert record == tf.train.Example.FromString(record).SerializeToString(deterministic=True)


def _files(root):
    out = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


@pytest.mark.slow
def test_two_processes_write_byte_identical_shards(tmp_path):
    catalog, _ = make_catalog(str(tmp_path), num_products=12, images_per_product=1)
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for name in ("first", "second"):
        argv = small_args(os.path.relpath(catalog, tmp_path), "out", retrieval_negatives=3)  # the same command
        done = subprocess.run(
            [sys.executable, "-m", "kaleido_tf.preprocessors.cli", *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        os.rename(tmp_path / "out", tmp_path / name)
    first, second = _files(tmp_path / "first"), _files(tmp_path / "second")
    shards = [name for name in first if name.endswith(".tfrecord")]
    assert len(shards) >= 5 and sorted(first) == sorted(second)
    differing = [name for name in first if first[name] != second[name]]
    assert differing == []
