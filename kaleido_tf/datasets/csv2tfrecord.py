"""Converts bundle TSV files (list file + data files) to TFRecord shards, in parallel.

    kaleido-csv2tfrecord --input_fp dataset/train_list.list_csv --input_schema pretrain \\
        --output_dir dataset/pretrain_tfrecord [--num_shards 64] [--feature_dtype float16|float32] \\
        [--compression GZIP] [--lenient] [--num_workers 8]

The lines are split into `num_shards` contiguous, equal runs (so the shards keep the input order); each
shard is written by one worker process (or this process with `--num_workers 1`) under a temporary name,
its lines parsed in parallel threads by the bundle reader's parser. The output directory itself is
assembled under a temporary name and appears only when every shard and `schema.json` are complete. Nothing is
dropped silently: the first bad line stops the run with its message (exit code 1), unless `--lenient` is
given, in which case bad lines are listed in `rejected.tsv` (file, line number, reason) beside the shards.
"""

import argparse
import concurrent.futures
import math
import multiprocessing
import os
import sys

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from kaleido_tf.datasets.errors import DataError
from kaleido_tf.datasets.line_parser import cached_line_parser
from kaleido_tf.datasets.schema import KNOWN_FIELD_LENGTHS, Schema, get_schema
from kaleido_tf.datasets.sources import read_list_file
from kaleido_tf.datasets.tfrecord_writer import (
    SCHEMA_JSON,
    SHARD_RE,
    TFRecordShardWriter,
    check_feature_dtype,
    encode_example,
    normalize_compression,
    shard_filename,
    write_schema_json,
)
from kaleido_tf.utils import cli_errors
from kaleido_tf.utils.io import atomic_directory, atomic_write_text
from kaleido_tf.utils.progress_flag import add_progress_flag

REJECTED_TSV = "rejected.tsv"
EXAMPLES_PER_SHARD = 1024  # default shard size: ~240 MB of full pretraining examples in float16
_INDEX_CHUNK = 16 << 20


def index_lines(path, progress=None):
    """Byte offset of the start of every line of a data file (int64 array) and the file size.

    Lines end with "\\n"; a last line without one counts, an empty tail after the last "\\n" does not
    (the lines TextLineDataset yields).
    """
    starts = [np.zeros(1, dtype=np.int64)]
    size = 0
    with tf.io.gfile.GFile(path, "rb") as f:
        while True:
            chunk = f.read(_INDEX_CHUNK)
            if not chunk:
                break
            newlines = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
            starts.append(newlines.astype(np.int64) + (size + 1))
            size += len(chunk)
            if progress is not None:
                progress(len(chunk))
    starts = np.concatenate(starts)
    if starts[-1] == size:
        starts = starts[:-1]
    return starts, size


def plan_shards(files, line_starts, num_shards):
    """Splits all lines into `num_shards` contiguous runs: per shard a list of segments.

    A segment is (path, first line number (1-based), number of lines, byte offset of the first line).
    """
    counts = [len(starts) for starts in line_starts]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    total = int(offsets[-1])
    plans = []
    for shard in range(num_shards):
        low, high = shard * total // num_shards, (shard + 1) * total // num_shards
        segments = []
        for index, path in enumerate(files):
            first, last = max(low, offsets[index]), min(high, offsets[index + 1])
            if first < last:
                line = int(first - offsets[index])
                segments.append((path, line + 1, int(last - first), int(line_starts[index][line])))
        plans.append(segments)
    return plans


def default_num_workers():
    """One worker process per 4 CPUs (each parses with several threads), 1 to 8."""
    return max(1, min(8, (os.cpu_count() or 1) // 4))


def _reason(error):
    text = str(error)
    if error.source and text.startswith(error.source + ": "):
        text = text[len(error.source) + 2 :]
    return " ".join(text.split())


def _open_binary(path):
    return open(path, "rb") if "://" not in path else tf.io.gfile.GFile(path, "rb")


def _shard_lines(segments, chunk=16):
    """Chunks of (paths, line numbers, lines) of a shard, lines as TextLineDataset yields them."""
    paths, numbers, lines = [], [], []
    for data_path, first_line, num_lines, byte_offset in segments:
        with _open_binary(data_path) as f:
            f.seek(byte_offset)
            for number in range(first_line, first_line + num_lines):
                line = f.readline()
                if line.endswith(b"\n"):
                    line = line[:-1]
                if line.endswith(b"\r"):
                    line = line[:-1]
                paths.append(data_path)
                numbers.append(number)
                lines.append(line)
                if len(lines) == chunk:
                    yield paths, numbers, lines
                    paths, numbers, lines = [], [], []
    if lines:
        yield paths, numbers, lines


def _parsed_lines(segments, schema):
    """Dataset of (path, line number, values, error) parsed in parallel by the bundle reader's parser."""
    parse_line = cached_line_parser(schema)
    chunks = tf.data.Dataset.from_generator(
        lambda: _shard_lines(segments),
        output_signature=(
            tf.TensorSpec([None], tf.string),
            tf.TensorSpec([None], tf.int64),
            tf.TensorSpec([None], tf.string),
        ),
    )

    @tf.autograph.experimental.do_not_convert
    def parse(path, number, line):
        return (path, number) + parse_line(path, number, line)

    parsed = chunks.unbatch().map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return parsed.prefetch(4)


def convert_shard(
    shard, num_shards, segments, output_dir, schema_string, feature_dtype, compression, lenient, progress=None
):
    """Writes one shard; returns (shard, lines read, examples written, [(path, line, reason), ...])."""
    schema = Schema.parse(schema_string)
    path = os.path.join(output_dir, shard_filename(shard, num_shards, compression))
    lines_read = 0
    rejected = []
    with TFRecordShardWriter(path, schema, feature_dtype, compression) as writer:
        for data_path, number, values, error in _parsed_lines(segments, schema).as_numpy_iterator():
            data_path, number, error = data_path.decode("utf-8"), int(number), error.decode("utf-8")
            source = f"{data_path}:{number}"
            lines_read += 1
            try:
                if error:
                    raise DataError(error, source)
                record = encode_example(values, schema, feature_dtype, source)
            except DataError as error:
                if not lenient:
                    raise
                rejected.append((data_path, number, _reason(error)))
            else:
                writer.write_serialized(record)
            if progress is not None:
                progress(1)
    return shard, lines_read, writer.num_written, rejected


class _Stopped(Exception):
    """Raised in a worker when the run was stopped by another worker's error."""


_WORKER_STATE = {}


def _init_worker(counter, stop):
    _WORKER_STATE["counter"] = counter
    _WORKER_STATE["stop"] = stop


def _tick(count):
    if _WORKER_STATE["stop"].is_set():
        raise _Stopped()
    counter = _WORKER_STATE["counter"]
    with counter.get_lock():
        counter.value += count


def _convert_shard_in_worker(args):
    return convert_shard(*args, progress=_tick)


def _run_tasks(tasks, num_workers, bar):
    """Yields the results of `convert_shard` for every task, in this process or in worker processes."""
    if num_workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield convert_shard(*task, progress=bar.update)
        return
    context = multiprocessing.get_context("spawn")  # TensorFlow does not survive fork() reliably
    counter, stop = context.Value("q", 0), context.Event()
    with concurrent.futures.ProcessPoolExecutor(
        num_workers, mp_context=context, initializer=_init_worker, initargs=(counter, stop)
    ) as executor:
        pending = {executor.submit(_convert_shard_in_worker, task) for task in tasks}
        try:
            while pending:
                done, pending = concurrent.futures.wait(
                    pending, timeout=0.25, return_when=concurrent.futures.FIRST_COMPLETED
                )
                bar.update(counter.value - bar.n)
                for future in done:
                    yield future.result()  # re-raises a worker's DataError
        except BaseException:
            # Running workers see the flag at their next line and drop their shard; queued ones are cancelled.
            stop.set()
            for future in pending:
                future.cancel()
            raise


def _check_output_dir(path):
    if "://" in path:
        raise ValueError(f"output_dir {path}: write to a local directory (copy the result afterwards)")
    if not os.path.exists(path):
        return
    if not os.path.isdir(path):
        raise ValueError(f"output_dir {path} exists and is not a directory")
    foreign = sorted(
        name for name in os.listdir(path) if name not in (SCHEMA_JSON, REJECTED_TSV) and not SHARD_RE.match(name)
    )
    if foreign:
        raise ValueError(
            f"output_dir {path} holds files that a conversion did not write ({', '.join(foreign[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}); choose an empty or new directory"
        )


def convert_bundles(
    input_fp,
    input_schema,
    output_dir,
    num_shards=None,
    feature_dtype="float16",
    compression=None,
    lenient=False,
    num_workers=None,
    progress=True,
    expected_lengths=KNOWN_FIELD_LENGTHS,
):
    """Converts the data files named by list file `input_fp` to TFRecord shards in `output_dir`.

    Args:
      input_schema: a `Schema`, a preset name or an `--input_schema` string (checked against
        `expected_lengths`; None skips the check).
      num_shards: default max(num_workers, ceil(lines / 1024)), at most the number of lines.
      feature_dtype: "float16" or "float32" storage for patch-feature fields.
      compression: None or "GZIP".
      lenient: list bad lines in rejected.tsv instead of stopping at the first one.
      num_workers: processes (default `default_num_workers()`); 1 converts in this process. Each process
        parses with several threads, so a few processes keep many cores busy.

    Returns:
      dict with lines_read, written, rejected, num_shards, output_dir.

    Raises:
      DataError: for the first bad line (not lenient) or bad input files; `output_dir` is then unchanged.
    """
    schema = input_schema if isinstance(input_schema, Schema) else get_schema(input_schema, expected_lengths)
    feature_dtype = check_feature_dtype(feature_dtype)
    compression = normalize_compression(compression)
    output_dir = os.path.abspath(os.fspath(output_dir))
    _check_output_dir(output_dir)
    files = read_list_file(input_fp)
    if num_workers is None:
        num_workers = default_num_workers()
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}")

    sizes = [tf.io.gfile.stat(path).length for path in files]
    line_starts = []
    with tqdm(total=sum(sizes), unit="B", unit_scale=True, desc="indexing lines", disable=not progress) as bar:
        for path in files:
            starts, _ = index_lines(path, bar.update)
            line_starts.append(starts)
    total = sum(len(starts) for starts in line_starts)
    if num_shards is None:
        num_shards = max(num_workers, math.ceil(total / EXAMPLES_PER_SHARD))
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    num_shards = min(num_shards, total)
    plans = plan_shards(files, line_starts, num_shards)
    num_workers = min(num_workers, num_shards)

    lines_read = written = 0
    rejected = []
    with atomic_directory(output_dir) as tmp_dir:
        tasks = [
            (shard, num_shards, segments, tmp_dir, schema.to_string(), feature_dtype, compression, lenient)
            for shard, segments in enumerate(plans)
        ]
        with tqdm(
            total=total, unit="line", desc=f"converting ({num_workers} workers)", disable=not progress, smoothing=0.1
        ) as bar:
            for _, shard_read, shard_written, shard_rejected in _run_tasks(tasks, num_workers, bar):
                lines_read += shard_read
                written += shard_written
                rejected.extend(shard_rejected)
                bar.set_postfix(written=written, rejected=len(rejected))
        if lenient:
            order = {path: index for index, path in enumerate(files)}
            rejected.sort(key=lambda item: (order[item[0]], item[1]))
            atomic_write_text(
                os.path.join(tmp_dir, REJECTED_TSV),
                "file\tline\treason\n" + "".join(f"{p}\t{n}\t{r}\n" for p, n, r in rejected),
            )
        write_schema_json(
            tmp_dir,
            schema,
            feature_dtype,
            compression,
            num_examples=written,
            num_shards=num_shards,
            lines_read=lines_read,
            lines_rejected=len(rejected),
        )
    return {
        "lines_read": lines_read,
        "written": written,
        "rejected": len(rejected),
        "num_shards": num_shards,
        "output_dir": output_dir,
    }


def _parser():
    parser = argparse.ArgumentParser(
        prog="kaleido-csv2tfrecord",
        description="Convert bundle TSV data (a list file naming TSV files) to TFRecord shards.",
    )
    parser.add_argument("--input_fp", required=True, help="list file naming one TSV data file per line")
    parser.add_argument(
        "--input_schema", required=True, help="preset (pretrain, finetune, retrieval) or name:type:length,... string"
    )
    parser.add_argument("--output_dir", required=True, help="directory for the shards and schema.json")
    parser.add_argument(
        "--num_shards",
        type=int,
        default=None,
        help=f"number of shards (default: max(workers, lines / {EXAMPLES_PER_SHARD}))",
    )
    parser.add_argument(
        "--feature_dtype",
        choices=("float16", "float32"),
        default="float16",
        help="storage type of patch-feature fields",
    )
    parser.add_argument("--compression", type=str.upper, choices=("GZIP", "NONE"), default="NONE")
    parser.add_argument(
        "--lenient", action="store_true", help="write bad lines to rejected.tsv instead of stopping at the first one"
    )
    parser.add_argument("--num_workers", type=int, default=None, help="worker processes (default: CPUs / 4, 1 to 8)")
    parser.add_argument(
        "--no_length_check",
        action="store_true",
        help="accept field lengths that differ from the base model (custom configurations)",
    )
    add_progress_flag(parser, deprecated=("--quiet",))
    return parser


@cli_errors.cli("kaleido-csv2tfrecord")
def main(argv=None):
    """Command line entry; returns the exit code (0 done, 1 bad data or files, 2 bad arguments)."""
    args = _parser().parse_args(argv)
    try:
        counts = convert_bundles(
            args.input_fp,
            args.input_schema,
            args.output_dir,
            num_shards=args.num_shards,
            feature_dtype=args.feature_dtype,
            compression=args.compression,
            lenient=args.lenient,
            num_workers=args.num_workers,
            progress=args.progress,
            expected_lengths=None if args.no_length_check else KNOWN_FIELD_LENGTHS,
        )
    except (DataError, ValueError, OSError) as error:
        print(f"kaleido-csv2tfrecord: error: {error}", file=sys.stderr)
        return 1
    message = (
        f"lines read: {counts['lines_read']}, written: {counts['written']}, rejected: {counts['rejected']}"
        f" -> {counts['num_shards']} shards in {counts['output_dir']}"
    )
    if counts["rejected"]:
        message += f" (rejected lines: {os.path.join(counts['output_dir'], REJECTED_TSV)})"
    print(message)
    return 0


def run():
    """Console script `kaleido-csv2tfrecord`."""
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run()
