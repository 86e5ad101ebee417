"""Fast input pipeline over TFRecord shards (see docs/tfrecord_format.md).

    dataset = make_tfrecord_dataset("data/pretrain_tfrecord", batch_size=64, training=True)
    for batch in dataset:    # same keys, dtypes and shapes as make_bundle_dataset
        ...

Pipeline: shard files by worker -> parallel interleave of the shards (each checked for truncation or
corruption) -> shuffle serialized records -> repeat -> batch -> vectorised `tf.io.parse_example` of the
whole batch + `tf.io.decode_raw` of the feature bytes (float16 -> float32) in parallel -> prefetch.
"""

import os

import numpy as np
import tensorflow as tf

from kaleido_tf.datasets.errors import DataError, DataFileNotFoundError
from kaleido_tf.datasets.schema import Schema, get_schema
from kaleido_tf.datasets.sources import (
    finish_pipeline,
    is_deterministic,
    pipeline_options,
    resolve_sharding,
    sharded_records,
)
from kaleido_tf.datasets.tfrecord_writer import (
    SCHEMA_JSON,
    SHARD_RE,
    check_feature_dtype,
    field_encoding,
    normalize_compression,
    read_schema_json,
)

__all__ = ["make_tfrecord_dataset", "find_tfrecord_files"]

_GLOB_CHARS = set("*?[")


def _check_complete_shard_set(directory, names):
    totals = {}
    for name in names:
        match = SHARD_RE.match(name)
        totals.setdefault(int(match.group(2)), set()).add(int(match.group(1)))
    if len(totals) > 1:
        raise DataError(f"{directory} mixes shard sets of {sorted(totals)} shards; remove the stale shards")
    ((total, present),) = totals.items()
    for index in range(total):
        if index not in present:
            raise DataError(
                f"{directory}: shard part-{index:05d}-of-{total:05d} is missing "
                f"({len(present)} of {total} shards present)"
            )


def find_tfrecord_files(files_or_dir_or_pattern):
    """(sorted shard paths, directory of schema.json) for a directory, a glob pattern, a file or a list."""
    spec = files_or_dir_or_pattern
    if isinstance(spec, (list, tuple)):
        files = [os.fspath(p) for p in spec]
        if not files:
            raise ValueError("the list of TFRecord files is empty")
        for path in files:
            if not tf.io.gfile.exists(path):
                raise DataFileNotFoundError(f"TFRecord file {path} does not exist")
        return files, os.path.dirname(files[0])
    spec = os.fspath(spec)
    if tf.io.gfile.isdir(spec):
        names = sorted(n for n in tf.io.gfile.listdir(spec) if SHARD_RE.match(n.rstrip("/")))
        if not names:
            raise DataFileNotFoundError(f"no part-XXXXX-of-YYYYY.tfrecord[.gz] shards in directory {spec}")
        _check_complete_shard_set(spec, names)
        return [os.path.join(spec, n) for n in names], spec
    if _GLOB_CHARS & set(os.path.basename(spec)):
        files = sorted(tf.io.gfile.glob(spec))
        if not files:
            raise DataFileNotFoundError(f"no TFRecord files match {spec}")
        return files, os.path.dirname(files[0])
    if not tf.io.gfile.exists(spec):
        raise DataFileNotFoundError(f"TFRecord file or directory {spec} does not exist")
    return [spec], os.path.dirname(spec)


def _expected_sizes(files, compression):
    """Per file: bytes the records must span (plain), or the gzip trailer's uncompressed size mod 2^32."""
    sizes = []
    for path in files:
        length = tf.io.gfile.stat(path).length
        if not compression:
            sizes.append(length)
            continue
        if length < 18:
            raise DataError(f"TFRecord file {path} is too short ({length} bytes) to be GZIP-compressed")
        with tf.io.gfile.GFile(path, "rb") as f:
            magic = f.read(2)
            f.seek(length - 4)
            trailer = f.read(4)
        if magic != b"\x1f\x8b":
            raise DataError(f"TFRecord file {path} is not GZIP-compressed (bad magic bytes), but compression is GZIP")
        sizes.append(int.from_bytes(trailer, "little"))
    return np.array(sizes, dtype=np.int64)


def _checked_file_reader(compression, verify):
    compression_type = compression or ""

    def open_file(path, expected):
        records = tf.data.TFRecordDataset(path, compression_type=compression_type)
        if not verify:
            return records
        # A read error (DataLossError) ends this file's records (it is logged); the byte count then falls
        # short of the file's size and the check at the end-of-file marker (an empty record: a real
        # serialized example is never empty) fails with a message naming the file.
        records = records.ignore_errors(log_warning=True).concatenate(tf.data.Dataset.from_tensors(b""))

        def count(total, record):
            size = tf.cast(tf.strings.length(record), tf.int64)
            is_end = tf.equal(size, 0)
            # On disk a record is: length (8 bytes), its CRC (4), data, data CRC (4).
            total = tf.where(is_end, total, total + size + 16)
            seen = total % (1 << 32) if compression else total
            ok = tf.logical_or(tf.logical_not(is_end), tf.equal(seen, expected))

            def fail():
                message = tf.strings.format(
                    "TFRecord file {} is truncated or corrupt: its readable records span {} bytes, expected {}"
                    + (" (gzip size mod 2^32)" if compression else "")
                    + "; see the DataLossError logged above",
                    (path, seen, expected),
                )
                with tf.control_dependencies([tf.debugging.Assert(False, [message])]):
                    return tf.identity(ok)

            checked = tf.cond(ok, lambda: ok, fail)
            with tf.control_dependencies([checked]):
                record = tf.identity(record)
            return total, record

        checked = records.scan(tf.constant(0, tf.int64), count)
        return checked.filter(lambda record: tf.strings.length(record) > 0)

    return open_file


def _batch_parser(schema, encodings):
    """Parses a batch of serialized examples; `encodings` maps field name -> storage encoding."""
    features = {}
    for spec in schema.fields:
        encoding = encodings[spec.name]
        if encoding == "int64_list":
            features[spec.name] = tf.io.FixedLenFeature([spec.length], tf.int64)
        elif encoding == "bytes_list":
            features[spec.name] = tf.io.FixedLenFeature([1], tf.string)
        elif encoding.startswith("raw_"):
            features[spec.name] = tf.io.FixedLenFeature([], tf.string)
        else:
            features[spec.name] = tf.io.FixedLenFeature([spec.length], tf.float32)

    def parse(serialized):  # [B] serialized tf.train.Example
        parsed = tf.io.parse_example(serialized, features)
        out = {}
        for spec in schema.fields:
            value = parsed[spec.name]
            encoding = encodings[spec.name]
            if encoding.startswith("raw_"):
                raw_dtype = tf.float16 if encoding == "raw_float16" else tf.float32
                value = tf.io.decode_raw(value, raw_dtype)  # [B, len]
                check = tf.debugging.assert_equal(
                    tf.shape(value)[1],
                    spec.length,
                    message=f"field {spec.name}: stored feature bytes do not hold {spec.length} "
                    f"{encoding[4:]} values (schema.json disagrees with the shards)",
                )
                with tf.control_dependencies([check]):
                    value = tf.reshape(value, [-1, spec.length])
                value.set_shape([serialized.shape[0], spec.length])
                if raw_dtype != tf.float32:
                    value = tf.cast(value, tf.float32)
            out[spec.name] = value  # int64 / float32 [B, len], string [B, 1]
        return out

    return parse


def _resolve_metadata(directory, files, schema, feature_dtype, compression):
    has_json = tf.io.gfile.exists(os.path.join(directory, SCHEMA_JSON))
    if schema is None and not has_json:
        raise DataFileNotFoundError(
            f"no {SCHEMA_JSON} in {directory or '.'}; pass schema= (and feature_dtype=, "
            f"compression=) for shards without one"
        )
    if has_json:
        meta = read_schema_json(directory)
        if schema is not None:
            given = schema if isinstance(schema, Schema) else get_schema(schema, expected_lengths=None)
            if given != meta.schema:
                raise ValueError(
                    f"the schema given differs from {os.path.join(directory, SCHEMA_JSON)}:\n"
                    f"  given:  {given.to_string()}\n  stored: {meta.schema.to_string()}\n"
                    f"(use fields= to read a subset)"
                )
        for name, value, stored in (
            ("feature_dtype", feature_dtype, meta.feature_dtype),
            ("compression", compression, meta.compression),
        ):
            if value is not None and (normalize_compression(value) if name == "compression" else value) != stored:
                raise ValueError(f"{name}={value!r} disagrees with {SCHEMA_JSON}, which says {stored!r}")
        return meta.schema, {spec.name: meta.encoding(spec.name) for spec in meta.schema}, meta.compression
    schema = schema if isinstance(schema, Schema) else get_schema(schema, expected_lengths=None)
    feature_dtype = check_feature_dtype(feature_dtype or "float16")
    encodings = {spec.name: field_encoding(spec, feature_dtype) for spec in schema}
    if compression is None:
        gz = {path.endswith(".gz") for path in files}
        if len(gz) > 1:
            raise ValueError("some files end in .gz and some do not; pass compression= explicitly")
        compression = "GZIP" if gz.pop() else None
    return schema, encodings, normalize_compression(compression)


def make_tfrecord_dataset(
    files_or_dir_or_pattern,
    batch_size,
    training,
    schema=None,
    num_epochs=None,
    input_context=None,
    shuffle_buffer=256,
    drop_remainder=None,
    fields=None,
    num_workers=None,
    worker_index=None,
    seed=None,
    feature_dtype=None,
    compression=None,
    verify=True,
    cycle_length=4,
):
    """Batched dict dataset from TFRecord shards.

    Args:
      files_or_dir_or_pattern: a shard directory (all part-*-of-* shards, which must be complete), a glob
        pattern, one file or a list of files.
      batch_size: examples per yielded batch (per input pipeline).
      training: shuffle and repeat `num_epochs` times (None: forever), non-deterministic interleave
        unless `seed` is given; otherwise one deterministic pass (unless `num_epochs` says more).
      schema: None reads `schema.json` beside the shards; a given schema must equal it. Without a
        schema.json, `feature_dtype` (default float16) and `compression` (default: from the ".gz" suffix)
        describe the shards.
      input_context: a `tf.distribute.InputContext`; or give `num_workers` and `worker_index`.
      shuffle_buffer: serialized examples held for shuffling (~230 KB each for full pretraining examples
        in float16).
      drop_remainder: defaults to `training` (fixed batch shapes).
      fields: names of the fields to return (default all).
      verify: check that every shard is read to its end (a truncated or corrupt shard raises an error
        naming the file).

    Returns:
      tf.data.Dataset of dicts: int fields int64 [B, len], float fields float32 [B, len], str fields
      string [B, 1].
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if drop_remainder is None:
        drop_remainder = training
    files, directory = find_tfrecord_files(files_or_dir_or_pattern)
    schema, encodings, compression = _resolve_metadata(directory, files, schema, feature_dtype, compression)
    if fields is not None:
        schema = schema.select(fields)
    num_shards, shard_index = resolve_sharding(input_context, num_workers, worker_index)
    file_table = (files, _expected_sizes(files, compression))
    records = sharded_records(
        file_table,
        _checked_file_reader(compression, verify),
        training,
        num_shards,
        shard_index,
        cycle_length=cycle_length,
        seed=seed,
    )
    records = finish_pipeline(records, training, num_epochs, shuffle_buffer, seed)
    dataset = records.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(
        _batch_parser(schema, encodings),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=is_deterministic(training, seed),
    )
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    return dataset.with_options(pipeline_options(training, seed))
