"""TFRecord shards: writer validation and atomicity, schema.json, reader pipeline and integrity checks."""

import gzip
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from kaleido_tf.datasets import (
    DataError,
    DataFileNotFoundError,
    Schema,
    TFRecordShardWriter,
    convert_bundles,
    make_bundle_dataset,
    make_tfrecord_dataset,
    read_schema_json,
    shard_filename,
    write_schema_json,
)
from kaleido_tf.datasets.synthetic import random_example

from .conftest import collect, example_rows, make_bundle


def _write_shards(directory, schema, examples, num_shards=2, feature_dtype="float16", compression=None):
    directory.mkdir(parents=True, exist_ok=True)
    for shard in range(num_shards):
        path = directory / shard_filename(shard, num_shards, compression)
        with TFRecordShardWriter(path, schema, feature_dtype, compression) as writer:
            for example in examples[shard::num_shards]:
                writer.write(example)
        assert writer.num_written == len(examples[shard::num_shards])
    write_schema_json(directory, schema, feature_dtype, compression, num_examples=len(examples), num_shards=num_shards)
    return directory


def _examples(schema, count, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for index in range(count):
        example = random_example(schema, rng)
        example["uid"] = np.array([index, seed], dtype=np.int64)
        out.append(example)
    return out


def _sorted_by_uid(rows):
    order = np.lexsort(rows["uid"].T[::-1])
    return {name: value[order] for name, value in rows.items()}


@pytest.mark.parametrize("feature_dtype, compression", [("float16", None), ("float32", "GZIP")])
def test_write_then_read(tmp_path, tiny_schema, feature_dtype, compression):
    examples = _examples(tiny_schema, 9)
    directory = _write_shards(tmp_path / "shards", tiny_schema, examples, 3, feature_dtype, compression)
    suffix = ".tfrecord.gz" if compression else ".tfrecord"
    assert sorted(os.listdir(directory)) == [f"part-0000{i}-of-00003{suffix}" for i in range(3)] + ["schema.json"]
    dataset = make_tfrecord_dataset(str(directory), batch_size=4, training=False)
    batch = next(iter(dataset))
    assert batch["ids"].dtype == tf.int64 and batch["ids"].shape == (4, 6)
    assert batch["feat"].dtype == tf.float32 and batch["feat"].shape == (4, 96)
    assert batch["name"].dtype == tf.string and batch["name"].shape == (4, 1)
    assert batch["label"].shape == (4, 1)
    got = _sorted_by_uid(collect(dataset))
    want = example_rows(examples, tiny_schema)
    for name in tiny_schema.names:
        if name == "feat" and feature_dtype == "float16":
            np.testing.assert_allclose(got[name], want[name], rtol=1e-3)
            assert not np.array_equal(got[name], want[name])  # really stored as float16
        else:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_schema_json_round_trip_and_encodings(tmp_path, tiny_schema):
    write_schema_json(tmp_path, tiny_schema, "float16", "gzip", num_examples=5, lines_read=6)
    document = json.loads((tmp_path / "schema.json").read_text())
    assert document["compression"] == "GZIP" and document["counts"] == {"num_examples": 5, "lines_read": 6}
    encodings = {f["name"]: f["encoding"] for f in document["fields"]}
    assert encodings == {
        "uid": "int64_list",
        "ids": "int64_list",
        "weights": "float_list",
        "name": "bytes_list",
        "feat": "raw_float16",
        "img_loc_position_x": "float_list",
        "label": "int64_list",
    }
    meta = read_schema_json(tmp_path)
    assert meta.schema == tiny_schema and meta.feature_dtype == "float16" and meta.compression == "GZIP"
    assert meta.counts["num_examples"] == 5 and meta.encoding("feat") == "raw_float16"
    with pytest.raises(ValueError, match="count 'num_examples' must be a non-negative integer"):
        write_schema_json(tmp_path, tiny_schema, num_examples=-1)


def test_schema_json_errors(tmp_path):
    with pytest.raises(DataFileNotFoundError, match="schema.json does not exist"):
        read_schema_json(tmp_path)
    (tmp_path / "schema.json").write_text("{not json")
    with pytest.raises(DataError, match="schema.json: not valid JSON"):
        read_schema_json(tmp_path)
    (tmp_path / "schema.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(DataError, match="not a kaleido_tf.tfrecord schema file"):
        read_schema_json(tmp_path)


WRITE_ERRORS = [
    (lambda ex: ex.pop("label"), r"ex 3: missing fields: label"),
    (lambda ex: ex.update(extra=[1]), r"ex 3: fields not in the schema: extra"),
    (lambda ex: ex.update(ids=[1, 2, 3]), r"ex 3: field ids: wrong list length: expected 6 values, found 3"),
    (lambda ex: ex.update(ids=[1.0, 2, 3, 4, 5, 6.5]), r"field ids: value 6 of 6 \(6.5\) is not an integer"),
    (lambda ex: ex["weights"].__setitem__(1, np.nan), r"field weights: value 2 of 3 is NaN"),
    (lambda ex: ex["feat"].__setitem__(4, np.inf), r"field feat: value 5 of 96 is Inf"),
    (lambda ex: ex["feat"].__setitem__(0, 1e5), r"field feat: value 1 \(100000.0\) exceeds the float16 range"),
    (lambda ex: ex.update(name=3), r"field name: expected str or bytes, found int"),
    (lambda ex: ex.update(ids="1,2,3,4,5,6"), r"field ids: expected 6 numbers, found a string"),
]


@pytest.mark.parametrize("corrupt, pattern", WRITE_ERRORS)
def test_writer_validates_and_leaves_no_partial_shard(tmp_path, tiny_schema, corrupt, pattern):
    examples = _examples(tiny_schema, 3)
    corrupt(examples[2])
    path = tmp_path / shard_filename(0, 1)
    with pytest.raises(DataError, match=pattern):
        with TFRecordShardWriter(path, tiny_schema) as writer:
            for index, example in enumerate(examples):
                writer.write(example, source=f"ex {index + 1}")
    assert os.listdir(tmp_path) == []  # neither the shard nor its temporary file


def test_writer_accepts_lists_strings_and_float32_range(tmp_path):
    schema = Schema.parse("a:int:2,s:str:1,f:float:100")
    path = tmp_path / "part-00000-of-00001.tfrecord"
    with TFRecordShardWriter(path, schema, feature_dtype="float32") as writer:
        writer.write({"a": [1, 2], "s": "héllo", "f": np.full(100, 1e6)})
        writer.write({"a": np.array([[3, 4]]), "s": b"raw\x00bytes", "f": list(range(100))})
    write_schema_json(tmp_path, schema, "float32")
    got = collect(make_tfrecord_dataset(str(tmp_path), 2, training=False))
    assert got["a"].tolist() == [[1, 2], [3, 4]]
    assert got["s"][:, 0].tolist() == ["héllo".encode(), b"raw\x00bytes"]
    np.testing.assert_array_equal(got["f"][0], np.full(100, 1e6, np.float32))


def _converted(tmp_path, schema, num_lines=10, num_files=2, num_shards=2, compression=None):
    list_file, examples = make_bundle(tmp_path / "bundle", schema, num_lines, num_files=num_files)
    out = tmp_path / "shards"
    convert_bundles(
        list_file,
        schema,
        out,
        num_shards=num_shards,
        compression=compression,
        num_workers=1,
        progress=False,
        expected_lengths=None,
    )
    return list_file, examples, out


@pytest.mark.parametrize("compression", [None, "GZIP"])
def test_truncated_shard_error_names_the_file(tmp_path, tiny_schema, compression):
    _, _, out = _converted(tmp_path, tiny_schema, compression=compression)
    victim = out / shard_filename(1, 2, compression)
    data = victim.read_bytes()
    victim.write_bytes(data[:-40])
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        collect(make_tfrecord_dataset(str(out), 3, training=False))
    message = str(info.value)
    assert str(victim) in message and "is truncated or corrupt" in message
    healthy = make_tfrecord_dataset([str(out / shard_filename(0, 2, compression))], 3, training=False)
    assert len(collect(healthy)["uid"]) == 5


def test_corrupt_byte_in_the_middle(tmp_path, tiny_schema):
    _, _, out = _converted(tmp_path, tiny_schema)
    victim = out / shard_filename(0, 2)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"{victim}.* is truncated or corrupt"):
        collect(make_tfrecord_dataset(str(out), 3, training=True, num_epochs=1))


def test_shard_set_checks(tmp_path, tiny_schema):
    _, _, out = _converted(tmp_path, tiny_schema, num_shards=3)
    os.remove(out / shard_filename(1, 3))
    with pytest.raises(DataError, match="shard part-00001-of-00003 is missing"):
        make_tfrecord_dataset(str(out), 2, training=False)
    (out / shard_filename(0, 5)).write_bytes(b"")
    with pytest.raises(DataError, match="mixes shard sets"):
        make_tfrecord_dataset(str(out), 2, training=False)
    with pytest.raises(DataFileNotFoundError, match="no part-XXXXX-of-YYYYY"):
        make_tfrecord_dataset(str(tmp_path / "bundle"), 2, training=False)
    with pytest.raises(DataFileNotFoundError, match="no TFRecord files match"):
        make_tfrecord_dataset(str(out / "*.nothing"), 2, training=False)


def test_schema_argument_fields_and_files_without_schema_json(tmp_path, tiny_schema):
    _, examples, out = _converted(tmp_path, tiny_schema)
    other = Schema.parse(tiny_schema.to_string().replace("ids:int:6", "ids:int:5"))
    with pytest.raises(ValueError, match="differs from .*schema.json"):
        make_tfrecord_dataset(str(out), 2, training=False, schema=other)
    subset = collect(make_tfrecord_dataset(str(out / "part-*"), 4, training=False, fields=["label", "uid"]))
    assert sorted(subset) == ["label", "uid"] and len(subset["uid"]) == 10
    os.remove(out / "schema.json")
    with pytest.raises(DataFileNotFoundError, match="no schema.json"):
        make_tfrecord_dataset(str(out), 2, training=False)
    got = collect(make_tfrecord_dataset(str(out), 4, training=False, schema=tiny_schema.to_string()))
    np.testing.assert_array_equal(got["ids"], example_rows(examples, tiny_schema)["ids"])


def test_sharding_determinism_and_training_batches(tmp_path, tiny_schema):
    _, _, out = _converted(tmp_path, tiny_schema, num_lines=13, num_shards=4)
    for workers in (2, 5):  # by file, then by record
        parts = [
            collect(
                make_tfrecord_dataset(
                    str(out),
                    1,
                    training=True,
                    num_epochs=1,
                    input_context=tf.distribute.InputContext(num_input_pipelines=workers, input_pipeline_id=i),
                )
            )["uid"]
            for i in range(workers)
        ]
        uids = sorted(tuple(u) for part in parts for u in part.tolist())
        assert uids == [(i, 0) for i in range(13)], workers
    first = collect(make_tfrecord_dataset(str(out), 3, training=False))["uid"][:, 0].tolist()
    assert first == list(range(13)) == collect(make_tfrecord_dataset(str(out), 5, training=False))["uid"][:, 0].tolist()
    train = list(make_tfrecord_dataset(str(out), 4, training=True).take(8))  # repeats forever
    assert len(train) == 8 and all(b["uid"].shape == (4, 2) for b in train)


def test_gzip_detection_without_schema_json(tmp_path, tiny_schema):
    examples = _examples(tiny_schema, 4)
    directory = _write_shards(tmp_path / "s", tiny_schema, examples, 1, compression="GZIP")
    os.remove(directory / "schema.json")
    path = directory / shard_filename(0, 1, "GZIP")
    with gzip.open(path) as f:
        assert len(f.read()) > 0  # a real gzip file
    got = collect(make_tfrecord_dataset([str(path)], 4, training=False, schema=tiny_schema))
    assert got["uid"][:, 0].tolist() == [0, 1, 2, 3]


def test_round_trip_equals_bundle_reader(tmp_path, tiny_schema):
    list_file, _, out = _converted(tmp_path, tiny_schema, num_lines=9, num_files=3, num_shards=2)
    bundle = collect(make_bundle_dataset(list_file, tiny_schema, 4, training=False))
    shards = collect(make_tfrecord_dataset(str(out), 4, training=False))
    for name in tiny_schema.names:
        if name == "feat":
            np.testing.assert_allclose(shards[name], bundle[name], rtol=1e-3)
        else:
            np.testing.assert_array_equal(shards[name], bundle[name], err_msg=name)
