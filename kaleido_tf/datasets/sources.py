"""Finding input files and spreading them over workers; shared by the bundle and TFRecord readers.

Sharding rule (both readers): with N input pipelines (workers) and at least N files, each pipeline reads
the files `i, i + N, i + 2N, ...` of the list; with fewer files than pipelines every pipeline reads all
files in the same order and keeps every N-th record. Either way the pipelines' examples are disjoint and
together cover the data once per epoch.
"""

import os

import tensorflow as tf

from kaleido_tf.datasets.errors import DataError, DataFileNotFoundError

# A fixed seed for the file order when records are sharded by line: every worker must see the same order.
_LINE_SHARDING_SEED = 20210609


def _is_remote(path):
    return "://" in path


def read_list_file(list_file):
    """Returns the data files a list file names, resolved and checked.

    One path per line; blank lines and lines holding only digits (example counts some tools write) are
    skipped, as EasyTransfer did. A relative path is looked up beside the list file, then in the current
    directory.

    Raises:
      DataFileNotFoundError: the list file or a data file does not exist.
      DataError: the list file names no data file, or a data file is empty.
    """
    list_file = os.fspath(list_file)
    if not tf.io.gfile.exists(list_file):
        raise DataFileNotFoundError(f"list file {list_file} does not exist")
    if tf.io.gfile.isdir(list_file):
        raise DataError(f"list file {list_file} is a directory; expected a text file naming one data file per line")
    with tf.io.gfile.GFile(list_file, "r") as f:
        text = f.read()
    base = os.path.dirname(list_file)
    files = []
    for number, raw in enumerate(text.splitlines(), start=1):
        entry = raw.strip()
        if not entry or entry.isdigit():
            continue
        candidates = [entry] if (os.path.isabs(entry) or _is_remote(entry)) else [os.path.join(base, entry), entry]
        path = next((c for c in candidates if tf.io.gfile.exists(c)), None)
        if path is None:
            looked = " and ".join(os.path.abspath(c) if not _is_remote(c) else c for c in candidates)
            raise DataFileNotFoundError(f"{list_file}:{number}: data file {entry!r} not found (looked for {looked})")
        if not _is_remote(path):
            path = os.path.abspath(path)
        if tf.io.gfile.isdir(path):
            raise DataError(f"{list_file}:{number}: {path} is a directory, not a data file")
        if tf.io.gfile.stat(path).length == 0:
            raise DataError(f"{list_file}:{number}: data file {path} is empty")
        files.append(path)
    if not files:
        raise DataError(f"list file {list_file} is empty: it names no data files")
    return files


def resolve_sharding(input_context=None, num_workers=None, worker_index=None):
    """(number of input pipelines, this pipeline's index) from an InputContext or explicit numbers."""
    if input_context is not None:
        if num_workers is not None or worker_index is not None:
            raise ValueError("pass either input_context or num_workers/worker_index, not both")
        return int(input_context.num_input_pipelines), int(input_context.input_pipeline_id)
    if num_workers is None and worker_index is None:
        return 1, 0
    if num_workers is None or worker_index is None:
        raise ValueError("num_workers and worker_index go together")
    if num_workers < 1 or not 0 <= worker_index < num_workers:
        raise ValueError(
            f"worker_index must be in [0, num_workers): got worker_index={worker_index}, num_workers={num_workers}"
        )
    return int(num_workers), int(worker_index)


def sharded_records(file_table, open_file, training, num_shards, shard_index, cycle_length=4, seed=None):
    """Interleaved records of this worker's part of the files.

    Args:
      file_table: a tuple of equal-length lists (the first holds the paths), one entry per file.
      open_file: maps one entry of `file_table` (tensors) to a dataset of records.
      training: files are shuffled and read in a parallel interleave when True (non-deterministic for
        speed unless a seed is given or records are sharded); otherwise read one after the other in list
        order.
      seed: with a seed the training order is a function of the seed alone, so a resumed run (which
        skips the batches already seen) continues with exactly the batches an uninterrupted run sees.
      num_shards, shard_index: from `resolve_sharding`.
    """
    num_files = len(file_table[0])
    by_file = num_shards > 1 and num_files >= num_shards
    by_record = num_shards > 1 and not by_file
    files = tf.data.Dataset.from_tensor_slices(tuple(file_table))
    if by_file:
        files = files.shard(num_shards, shard_index)
        num_files = len(range(shard_index, num_files, num_shards))
    if training and num_files > 1:
        files = files.shuffle(num_files, seed=_LINE_SHARDING_SEED if by_record else seed, reshuffle_each_iteration=True)
    # Evaluation reads the files one after the other: examples come in list order, then line order (the
    # converter keeps that order across shards, so both formats yield the same sequence).
    records = files.interleave(
        lambda *entry: open_file(*entry),
        cycle_length=max(1, min(cycle_length, num_files)) if training else 1,
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=is_deterministic(training, seed) or by_record,
    )
    if by_record:
        records = records.shard(num_shards, shard_index)
    return records


def finish_pipeline(dataset, training, num_epochs, shuffle_buffer, seed):
    """Shuffle (training), repeat: None epochs means forever when training and once otherwise."""
    if training and shuffle_buffer and shuffle_buffer > 1:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if num_epochs is None:
        num_epochs = -1 if training else 1
    elif num_epochs < 1:
        raise ValueError(f"num_epochs must be >= 1 or None, got {num_epochs}")
    if num_epochs != 1:
        dataset = dataset.repeat(num_epochs)
    return dataset


def is_deterministic(training, seed):
    """Evaluation always keeps its order; training does when seeded (reproducible, resumable runs)."""
    return (not training) or seed is not None


def pipeline_options(training, seed=None):
    """Options: no automatic re-sharding by tf.distribute (the readers shard themselves)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    options.deterministic = is_deterministic(training, seed)
    return options
