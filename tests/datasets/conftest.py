"""Helpers for the data-layer tests: tiny schemas, bundle files in tmp_path, batch collection."""

import numpy as np
import pytest

from kaleido_tf.datasets import Schema
from kaleido_tf.datasets.synthetic import format_tsv_line, random_example, write_bundle

# Small but complete: ints of several lengths, a short float list, a str, a feature field (raw in
# TFRecord), a float position field (stays float_list) and a length-1 label.
TINY_SCHEMA = "uid:int:2,ids:int:6,weights:float:3,name:str:1,feat:float:96,img_loc_position_x:float:70,label:int:1"


@pytest.fixture
def tiny_schema():
    return Schema.parse(TINY_SCHEMA)


def make_bundle(directory, schema, num_lines, num_files=1, seed=0, **kwargs):
    """Writes a bundle; uid holds (line index, seed) so examples can be matched whatever the order."""
    rng = np.random.default_rng(seed)
    examples = []
    for index in range(num_lines):
        example = random_example(schema, rng)
        if "uid" in schema:
            example["uid"] = np.array([index, seed], dtype=np.int64)
        examples.append(example)
    return write_bundle(str(directory), schema, num_lines, num_files=num_files, examples=examples, **kwargs)


def write_lines(directory, lines, name="data.tsv"):
    """Writes raw lines (str) into one data file and a list file naming it; returns the list file path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    (directory / "list.txt").write_text(name + "\n")
    return str(directory / "list.txt")


def good_line(schema, seed=0, **overrides):
    """One valid TSV line for `schema` as a list of column strings (to corrupt one of them)."""
    example = random_example(schema, np.random.default_rng(seed))
    columns = format_tsv_line(example, schema).split("\t")
    for name, text in overrides.items():
        columns[schema.names.index(name)] = text
    return columns


def collect(dataset):
    """All batches concatenated: {name: numpy array [N, ...]}."""
    parts = {}
    for batch in dataset:
        for name, value in batch.items():
            parts.setdefault(name, []).append(value.numpy())
    return {name: np.concatenate(values) for name, values in parts.items()}


def example_rows(examples, schema):
    """Examples as the readers return them, stacked: {name: [N, length]} (str as bytes objects)."""
    rows = {}
    for spec in schema.fields:
        values = [np.asarray(example[spec.name]).reshape(-1) for example in examples]
        rows[spec.name] = np.stack(values)
    return rows
