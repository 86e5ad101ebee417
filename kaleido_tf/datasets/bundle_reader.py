"""Reader for the original data format: a list file naming TSV data files, one example per line.

    dataset = make_bundle_dataset("dataset/train_list.list_csv", "pretrain", batch_size=64, training=True)
    for batch in dataset:          # dict: input_ids int64 [64, 64], img_feature_convert_rotation float32 [64, 2048]
        ...

Lines are parsed by TF string ops where the text is clean, and by the python `parse_tsv_line` otherwise
(see `line_parser`). A bad line stops iteration with a `tf.errors.InvalidArgumentError` whose message is
the `DataError` text ("path:line: field 'x': ..."). For training speed convert the bundles to TFRecord
shards once (`kaleido-csv2tfrecord`) and read them with `make_tfrecord_dataset`: identical batches.
"""

import tensorflow as tf

from kaleido_tf.datasets.line_parser import cached_line_parser, raise_on_error
from kaleido_tf.datasets.schema import KNOWN_FIELD_LENGTHS, get_schema
from kaleido_tf.datasets.sources import (
    finish_pipeline,
    is_deterministic,
    pipeline_options,
    read_list_file,
    resolve_sharding,
    sharded_records,
)
from kaleido_tf.datasets.tsv_parser import parse_tsv_line

__all__ = ["make_bundle_dataset", "parse_tsv_line"]


def _parse_and_check(schema):
    parse_line = cached_line_parser(schema)

    @tf.autograph.experimental.do_not_convert
    def parse(path, line_number, line):
        return raise_on_error(*parse_line(path, line_number, line))

    return parse


def _open_text_file(path):
    # (path, 1-based line number, line) so errors can name both.
    lines = tf.data.TextLineDataset(path, buffer_size=1 << 20)
    return lines.enumerate(start=1).map(lambda number, line: (path, number, line))


def make_bundle_dataset(
    list_file,
    schema,
    batch_size,
    training,
    num_epochs=None,
    input_context=None,
    shuffle_buffer=256,
    drop_remainder=None,
    num_workers=None,
    worker_index=None,
    seed=None,
    expected_lengths=KNOWN_FIELD_LENGTHS,
):
    """Batched dict dataset from bundle TSV files.

    Args:
      list_file: text file naming the data files (relative paths: beside the list file, then the CWD).
      schema: a `Schema`, a preset name or an `--input_schema` string.
      batch_size: examples per yielded batch (per input pipeline).
      training: shuffle files and lines, repeat `num_epochs` times (None: forever); otherwise one
        deterministic pass in a fixed order (unless `num_epochs` says more).
      seed: seeds the shuffles; a seeded training pipeline also yields its batches in a reproducible
        order (parallel work is kept in order), so a resumed run sees the batches an uninterrupted one does.
      input_context: a `tf.distribute.InputContext`; or give `num_workers` and `worker_index`.
      shuffle_buffer: lines held for shuffling (text lines of a full pretraining example are ~1 MB each).
      drop_remainder: defaults to `training` (fixed batch shapes).
      expected_lengths: lengths a schema string must agree with (`get_schema`); None: no check.

    Returns:
      tf.data.Dataset of dicts: int fields int64 [B, len], float fields float32 [B, len], str fields
      string [B, 1].
    """
    if isinstance(schema, str):
        schema = get_schema(schema, expected_lengths=expected_lengths)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if drop_remainder is None:
        drop_remainder = training
    num_shards, shard_index = resolve_sharding(input_context, num_workers, worker_index)
    files = read_list_file(list_file)
    lines = sharded_records((files,), _open_text_file, training, num_shards, shard_index, seed=seed)
    lines = finish_pipeline(lines, training, num_epochs, shuffle_buffer, seed)
    dataset = lines.map(
        _parse_and_check(schema), num_parallel_calls=tf.data.AUTOTUNE, deterministic=is_deterministic(training, seed)
    )
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    return dataset.with_options(pipeline_options(training, seed))
