"""Data layer: input schemas, the original bundle TSV reader, and TFRecord shards for fast training input.

    from kaleido_tf.datasets import get_schema, make_bundle_dataset, make_tfrecord_dataset, convert_bundles

    schema = get_schema("pretrain")
    train = make_bundle_dataset("dataset/train_list.list_csv", schema, batch_size=64, training=True)
    convert_bundles("dataset/train_list.list_csv", schema, "dataset/pretrain_tfrecord")   # once
    train = make_tfrecord_dataset("dataset/pretrain_tfrecord", batch_size=64, training=True)  # same batches

Both readers yield dicts: int fields int64 [B, len], float fields float32 [B, len], str fields string [B, 1].
"""

from kaleido_tf.datasets.bundle_reader import make_bundle_dataset
from kaleido_tf.datasets.csv2tfrecord import convert_bundles
from kaleido_tf.datasets.errors import DataError, DataFileNotFoundError
from kaleido_tf.datasets.itm_negatives import with_itm_negatives
from kaleido_tf.datasets.schema import (
    KNOWN_FIELD_LENGTHS,
    SCHEMA_PRESETS,
    FieldSpec,
    Schema,
    get_schema,
    known_field_lengths,
)
from kaleido_tf.datasets.sources import read_list_file
from kaleido_tf.datasets.tfrecord_reader import find_tfrecord_files, make_tfrecord_dataset
from kaleido_tf.datasets.tfrecord_writer import (
    TFRecordMetadata,
    TFRecordShardWriter,
    encode_example,
    read_schema_json,
    shard_filename,
    validate_example,
    write_schema_json,
)
from kaleido_tf.datasets.tsv_parser import parse_tsv_line

__all__ = [
    "DataError",
    "DataFileNotFoundError",
    "FieldSpec",
    "KNOWN_FIELD_LENGTHS",
    "SCHEMA_PRESETS",
    "Schema",
    "TFRecordMetadata",
    "TFRecordShardWriter",
    "convert_bundles",
    "encode_example",
    "find_tfrecord_files",
    "get_schema",
    "known_field_lengths",
    "make_bundle_dataset",
    "make_tfrecord_dataset",
    "parse_tsv_line",
    "read_list_file",
    "read_schema_json",
    "shard_filename",
    "validate_example",
    "write_schema_json",
    "with_itm_negatives",
]
