"""Writes examples to TFRecord shards in the format described in docs/tfrecord_format.md.

    schema = get_schema("pretrain")
    with TFRecordShardWriter(out / shard_filename(0, 4), schema) as writer:   # float16 features
        for example in examples:                                               # dict name -> array/list/str
            writer.write(example)
    write_schema_json(out, schema, "float16", None, num_examples=n, num_shards=4)

A shard is written under a temporary name and renamed on a clean close, so a shard that exists is
complete; `schema.json` is written last, once all shards are in place.
"""

import dataclasses
import json
import os
import re
import uuid

import numpy as np
import tensorflow as tf

from kaleido_tf.datasets.errors import DataError, DataFileNotFoundError
from kaleido_tf.datasets.schema import Schema, get_schema
from kaleido_tf.utils.io import KeepOrDiscard, atomic_write_text, fsync_path

FORMAT_NAME = "kaleido_tf.tfrecord"
FORMAT_VERSION = 1
SCHEMA_JSON = "schema.json"
FEATURE_DTYPES = ("float16", "float32")
SHARD_RE = re.compile(r"part-(\d{5,})-of-(\d{5,})\.tfrecord(\.gz)?\Z")

_FLOAT16_MAX = float(np.finfo(np.float16).max)
_ENCODINGS_BY_TYPE = {
    "int": ("int64_list",),
    "str": ("bytes_list",),
    "float": ("float_list", "raw_float16", "raw_float32"),
}


def normalize_compression(compression):
    """None for no compression, "GZIP" for gzip; anything else is a ValueError."""
    if compression is None or str(compression).upper() in ("", "NONE"):
        return None
    if str(compression).upper() == "GZIP":
        return "GZIP"
    raise ValueError(f"unsupported compression {compression!r}; expected None or 'GZIP'")


def check_feature_dtype(feature_dtype):
    if feature_dtype not in FEATURE_DTYPES:
        raise ValueError(f"feature_dtype must be one of {FEATURE_DTYPES}, got {feature_dtype!r}")
    return feature_dtype


def shard_filename(index, num_shards, compression=None):
    """'part-00003-of-00016.tfrecord' (with '.gz' when compressed)."""
    if not 0 <= index < num_shards:
        raise ValueError(f"shard index {index} out of range for {num_shards} shards")
    suffix = ".tfrecord.gz" if normalize_compression(compression) else ".tfrecord"
    return f"part-{index:05d}-of-{num_shards:05d}{suffix}"


def field_encoding(spec, feature_dtype="float16"):
    """How a field is stored: int64_list, float_list, bytes_list (str) or raw_float16 / raw_float32."""
    if spec.dtype == "int":
        return "int64_list"
    if spec.dtype == "str":
        return "bytes_list"
    if spec.is_feature:
        return "raw_" + check_feature_dtype(feature_dtype)
    return "float_list"


def _error(source, spec, message):
    return DataError(f"{source}: field {spec.name}: {message}", source, spec.name)


def _validated_value(value, spec, source):
    """One field's value as a numpy array of shape [length], checked against the spec."""
    if spec.dtype == "str":
        if isinstance(value, np.ndarray):
            if value.size != 1:
                raise _error(source, spec, f"a str field holds one string, found an array of {value.size}")
            value = value.reshape(-1)[0]
        elif isinstance(value, (list, tuple)):
            if len(value) != 1:
                raise _error(source, spec, f"a str field holds one string, found a list of {len(value)}")
            value = value[0]
        if isinstance(value, str):
            value = value.encode("utf-8")
        elif isinstance(value, (bytes, bytearray, memoryview)):
            value = bytes(value)
        else:
            raise _error(source, spec, f"expected str or bytes, found {type(value).__name__}")
        return np.array([value], dtype=object)
    if isinstance(value, (str, bytes)):
        raise _error(source, spec, f"expected {spec.length} numbers, found a string")
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind not in "iuf":
        raise _error(source, spec, f"expected numbers, found values of type {array.dtype}")
    array = array.reshape(-1)
    if array.size != spec.length:
        raise _error(source, spec, f"wrong list length: expected {spec.length} values, found {array.size}")
    if spec.dtype == "int":
        if array.dtype.kind == "f":
            bad = ~(np.isfinite(array) & (array == np.round(array)))
            if bad.any():
                index = int(np.argmax(bad))
                raise _error(source, spec, f"value {index + 1} of {spec.length} ({array[index]}) is not an integer")
        elif array.dtype == np.uint64 and (array > np.iinfo(np.int64).max).any():
            raise _error(source, spec, "a value does not fit in int64")
        return array.astype(np.int64, copy=False)
    with np.errstate(over="ignore"):
        array = array.astype(np.float32, copy=False)
    finite = np.isfinite(array)
    if not finite.all():
        index = int(np.argmin(finite))
        kind = "NaN" if np.isnan(array[index]) else "Inf"
        raise _error(
            source, spec, f"value {index + 1} of {spec.length} is {kind}; NaN and Inf are not allowed in float fields"
        )
    return array


def validate_example(example, schema, source="<example>"):
    """Checks an example dict against the schema; returns {name: numpy array [length]} in schema order."""
    if not isinstance(example, dict):
        raise DataError(
            f"{source}: an example must be a dict of field name -> value, got {type(example).__name__}", source
        )
    missing = [name for name in schema.names if name not in example]
    if missing:
        raise DataError(f"{source}: missing fields: {', '.join(missing)}", source, missing[0])
    extra = sorted(set(example) - set(schema.names))
    if extra:
        raise DataError(f"{source}: fields not in the schema: {', '.join(map(str, extra))}", source, extra[0])
    return {spec.name: _validated_value(example[spec.name], spec, source) for spec in schema.fields}


def encode_example(example, schema, feature_dtype="float16", source="<example>"):
    """Validates an example and serializes it as a tf.train.Example (bytes)."""
    values = validate_example(example, schema, source)
    raw_dtype = "<f2" if check_feature_dtype(feature_dtype) == "float16" else "<f4"
    proto = tf.train.Example()
    features = proto.features.feature
    for spec in schema.fields:
        value = values[spec.name]
        if spec.dtype == "int":
            features[spec.name].int64_list.value.extend(value.tolist())
        elif spec.dtype == "str":
            features[spec.name].bytes_list.value.append(value[0])
        elif spec.is_feature:
            with np.errstate(over="ignore"):
                raw = value.astype(raw_dtype)
            if raw_dtype == "<f2" and not np.isfinite(raw).all():
                index = int(np.argmin(np.isfinite(raw)))
                raise _error(
                    source,
                    spec,
                    f"value {index + 1} ({value[index]}) exceeds the float16 range "
                    f"(+-{_FLOAT16_MAX:g}); write the shards with feature_dtype='float32'",
                )
            features[spec.name].bytes_list.value.append(raw.tobytes())
        else:
            features[spec.name].float_list.value.extend(value.tolist())
    return proto.SerializeToString(deterministic=True)  # map keys sorted: the same bytes in every process


class TFRecordShardWriter(KeepOrDiscard):
    """Writes one TFRecord shard; the file appears under its name only after a clean close.

    Use as a context manager: on an exception the temporary file is removed and nothing is left at
    `path`. `write(example)` validates the example against the schema (raising `DataError` with the
    same messages as the TSV parser) and appends it.

    Args:
      path: the shard's final path (see `shard_filename`).
      schema: a `Schema`, preset name or schema string.
      feature_dtype: "float16" (default) or "float32", the storage type of patch-feature fields.
      compression: None or "GZIP".
    """

    def __init__(self, path, schema, feature_dtype="float16", compression=None):
        self.path = os.fspath(path)
        self.schema = schema if isinstance(schema, Schema) else get_schema(schema, expected_lengths=None)
        self.feature_dtype = check_feature_dtype(feature_dtype)
        self.compression = normalize_compression(compression)
        self.num_written = 0
        self._writer = None
        self._tmp_path = None
        self._closed = False

    def __enter__(self):
        return self.open()

    def open(self):
        if self._writer is not None or self._closed:
            raise RuntimeError(f"shard writer for {self.path} was already opened")
        directory = os.path.dirname(self.path) or "."
        tf.io.gfile.makedirs(directory)
        self._tmp_path = os.path.join(directory, f".{os.path.basename(self.path)}.{uuid.uuid4().hex[:12]}.tmp")
        options = tf.io.TFRecordOptions(compression_type=self.compression or "")
        self._writer = tf.io.TFRecordWriter(self._tmp_path, options)
        return self

    def write(self, example, source=None):
        """Validates and appends one example (dict name -> numpy array / list / str / bytes)."""
        if self._writer is None:
            raise RuntimeError("the shard writer is not open; use it in a `with` block")
        if source is None:
            source = f"{self.path}: example {self.num_written + 1}"
        self._writer.write(encode_example(example, self.schema, self.feature_dtype, source))
        self.num_written += 1

    def write_serialized(self, record):
        """Appends an already encoded tf.train.Example (from `encode_example` with this writer's settings)."""
        if self._writer is None:
            raise RuntimeError("the shard writer is not open; use it in a `with` block")
        self._writer.write(record)
        self.num_written += 1

    def close(self):
        """Finishes the shard and renames it to its final path."""
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        self._closed = True
        if "://" not in self._tmp_path:
            fsync_path(self._tmp_path)
        tf.io.gfile.rename(self._tmp_path, self.path, overwrite=True)
        if "://" not in self.path:
            fsync_path(os.path.dirname(os.path.abspath(self.path)))

    def abort(self):
        """Drops the shard: closes and removes the temporary file; `path` is left untouched."""
        if self._writer is None:
            return
        try:
            self._writer.close()
        finally:
            self._writer = None
            self._closed = True
            if tf.io.gfile.exists(self._tmp_path):
                tf.io.gfile.remove(self._tmp_path)


# ----------------------------------------------------------------------------------------------------------
# schema.json


@dataclasses.dataclass(frozen=True)
class TFRecordMetadata:
    """What `schema.json` says about a directory of shards."""

    schema: Schema
    feature_dtype: str
    compression: object  # None or "GZIP"
    counts: dict
    encodings: dict = None  # name -> encoding as stored; None: derived from the schema and feature_dtype

    def encoding(self, name):
        if self.encodings and name in self.encodings:
            return self.encodings[name]
        return field_encoding(self.schema[name], self.feature_dtype)


def write_schema_json(directory, schema, feature_dtype="float16", compression=None, **counts):
    """Writes `schema.json` beside the shards (atomically); call it after the last shard is closed.

    `counts` are non-negative integers kept under "counts", e.g. num_examples=, num_shards=, lines_read=.
    Returns the path written.
    """
    schema = schema if isinstance(schema, Schema) else get_schema(schema, expected_lengths=None)
    feature_dtype = check_feature_dtype(feature_dtype)
    compression = normalize_compression(compression)
    for key, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"count {key!r} must be a non-negative integer, got {value!r}")
    document = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "input_schema": schema.to_string(),
        "fields": [
            {
                "name": spec.name,
                "type": spec.dtype,
                "length": spec.length,
                "encoding": field_encoding(spec, feature_dtype),
            }
            for spec in schema.fields
        ],
        "feature_dtype": feature_dtype,
        "byte_order": "little",
        "compression": compression,
        "shard_pattern": "part-XXXXX-of-YYYYY" + (".tfrecord.gz" if compression else ".tfrecord"),
        "counts": {key: int(value) for key, value in counts.items()},
    }
    path = os.path.join(os.fspath(directory), SCHEMA_JSON)
    atomic_write_text(path, json.dumps(document, indent=2) + "\n")
    return path


def read_schema_json(directory):
    """Reads `schema.json` from a shard directory (or the path of the file itself): a `TFRecordMetadata`."""
    directory = os.fspath(directory)
    path = directory if directory.endswith(".json") else os.path.join(directory, SCHEMA_JSON)
    if not tf.io.gfile.exists(path):
        raise DataFileNotFoundError(f"{path} does not exist; shards need their schema.json (or pass schema=)")
    with tf.io.gfile.GFile(path, "r") as f:
        text = f.read()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error})", path) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise DataError(f'{path}: not a {FORMAT_NAME} schema file ("format" is missing or different)', path)
    if document.get("version") != FORMAT_VERSION:
        raise DataError(
            f"{path}: format version {document.get('version')!r} is not supported (expected {FORMAT_VERSION})", path
        )
    for key in ("fields", "feature_dtype"):
        if key not in document:
            raise DataError(f"{path}: key {key!r} is missing", path)
    try:
        schema = Schema.parse(",".join(f"{f['name']}:{f['type']}:{f['length']}" for f in document["fields"]))
        feature_dtype = check_feature_dtype(document["feature_dtype"])
        compression = normalize_compression(document.get("compression"))
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(f"{path}: invalid content: {error}", path) from None
    encodings = {}
    for entry, spec in zip(document["fields"], schema.fields):
        stored = entry.get("encoding") or field_encoding(spec, feature_dtype)
        if stored not in _ENCODINGS_BY_TYPE[spec.dtype]:
            raise DataError(
                f"{path}: field {spec.name} of type {spec.dtype} has encoding {stored!r}; expected one "
                f"of {', '.join(_ENCODINGS_BY_TYPE[spec.dtype])}",
                path,
                spec.name,
            )
        encodings[spec.name] = stored
    return TFRecordMetadata(schema, feature_dtype, compression, dict(document.get("counts", {})), encodings)
