"""Input pipeline throughput: bundle TSV reader vs TFRecord shards, full-size pretraining examples.

    python bench/data_pipeline.py [--examples 512] [--files 4] [--batch_size 64] [--feature_dtype float16]

Generates random pretraining examples (55 x 2048 patch features each, printed with 4 decimals as feature
extraction scripts do), writes them as bundle TSV files, converts them to TFRecord shards, then times the
training pipelines of both readers (shuffle, repeat, batch, drop_remainder) and prints examples/s and the
ratio. Data goes to a temporary directory that is removed at the end (unless --workdir is given).
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kaleido_tf.datasets import convert_bundles, get_schema, make_bundle_dataset, make_tfrecord_dataset
from kaleido_tf.datasets.synthetic import write_bundle


def _throughput(dataset, batch_size, num_batches, warmup_batches):
    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator)
    start = time.perf_counter()
    for _ in range(num_batches):
        batch = next(iterator)
    elapsed = time.perf_counter() - start
    assert batch["img_feature_convert_blank_mask"].shape == (batch_size, 25 * 2048)
    return num_batches * batch_size / elapsed, elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=512)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--feature_dtype", choices=("float16", "float32"), default="float16")
    parser.add_argument("--compression", default=None, help="GZIP for compressed shards")
    parser.add_argument("--bundle_batches", type=int, default=6, help="timed batches of the bundle reader")
    parser.add_argument("--tfrecord_batches", type=int, default=60, help="timed batches of the TFRecord reader")
    parser.add_argument("--workdir", default=None, help="keep the generated data here")
    args = parser.parse_args(argv)

    schema = get_schema("pretrain")
    workdir = args.workdir or tempfile.mkdtemp(prefix="kaleido_bench_")
    try:
        start = time.perf_counter()
        list_file, _ = write_bundle(
            os.path.join(workdir, "bundle"), schema, args.examples, num_files=args.files, float_decimals=4
        )
        bundle_bytes = sum(
            os.path.getsize(os.path.join(workdir, "bundle", n)) for n in os.listdir(os.path.join(workdir, "bundle"))
        )
        print(
            f"generated {args.examples} examples in {args.files} TSV files: {bundle_bytes / 2**20:.0f} MiB, "
            f"{time.perf_counter() - start:.1f} s"
        )

        start = time.perf_counter()
        shard_dir = os.path.join(workdir, "tfrecord")
        counts = convert_bundles(
            list_file,
            schema,
            shard_dir,
            num_shards=args.files,
            feature_dtype=args.feature_dtype,
            compression=args.compression,
            progress=False,
        )
        elapsed = time.perf_counter() - start
        shard_bytes = sum(os.path.getsize(os.path.join(shard_dir, n)) for n in os.listdir(shard_dir))
        print(
            f"converted {counts['written']} examples to {counts['num_shards']} shards ({args.feature_dtype}): "
            f"{shard_bytes / 2**20:.0f} MiB, {elapsed:.1f} s ({counts['written'] / elapsed:.0f} examples/s)"
        )

        bundle = make_bundle_dataset(list_file, schema, args.batch_size, training=True)
        bundle_rate, bundle_time = _throughput(bundle, args.batch_size, args.bundle_batches, warmup_batches=1)
        print(
            f"bundle reader:   {bundle_rate:8.0f} examples/s ({args.bundle_batches} batches of {args.batch_size} "
            f"in {bundle_time:.1f} s)"
        )

        tfrecord = make_tfrecord_dataset(shard_dir, args.batch_size, training=True)
        tfrecord_rate, tfrecord_time = _throughput(tfrecord, args.batch_size, args.tfrecord_batches, warmup_batches=3)
        print(
            f"TFRecord reader: {tfrecord_rate:8.0f} examples/s ({args.tfrecord_batches} batches of "
            f"{args.batch_size} in {tfrecord_time:.1f} s)"
        )
        print(f"ratio TFRecord / bundle: {tfrecord_rate / bundle_rate:.1f}x")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
