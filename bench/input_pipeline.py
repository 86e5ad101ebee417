"""Benchmark: does the input path keep up with the training step?

Writes synthetic, model-valid pretraining examples as TFRecord shards (float16 features, the converter's
default) and as bundle TSV files, then measures in one process:

- the readers alone (`make_tfrecord_dataset`, `make_bundle_dataset`): examples/s at the training batch size;
- the Trainer's step fed by the TFRecord reader against the same step fed by constant tensors, interleaved: a
  ratio near 1 means the pipeline (prefetching in the background) does not starve the step.

    python bench/input_pipeline.py --config small --batch_size 8
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common


def example_rows(config, count, seed=0):
    """`count` single examples (dicts of 1-D arrays) with the pretraining schema's fields."""
    batch = common.pretrain_features(config, count, seed)
    return [{k: v[i].reshape(-1) for k, v in batch.items()} for i in range(count)]


def pretrain_schema(config):
    from kaleido_tf.datasets import Schema

    fields = [
        ("input_ids", "int", config.text_seq_len),
        ("input_mask", "int", config.text_seq_len),
        ("segment_ids", "int", config.text_seq_len),
        ("masked_lm_positions", "int", common.NUM_MASKED),
        ("masked_lm_ids", "int", common.NUM_MASKED),
        ("masked_lm_weights", "float", common.NUM_MASKED),
    ]
    for _, suffix, n in config.level_lengths():
        fields.append((f"img_feature_convert_{suffix}", "float", n * config.patch_feature_size))
    for _, suffix, n in config.level_lengths():
        fields.append((f"img_loc_position_{suffix}", "float", n * 5))
    fields += [
        ("img_grey_lm_ids", "int", config.masked_greymask_patch_num),
        ("img_blank_lm_ids", "int", config.masked_blankmask_patch_num),
        ("img_grey_mask_gt", "float", config.masked_greymask_patch_num * config.patch_feature_size),
        ("img_rotate_gt", "int", 1),
        ("img_jigsaw_gt", "int", 1),
        ("img_camouflage_gt", "int", 1),
        ("nx_sent_labels", "int", 1),
    ]
    return Schema.parse(",".join(f"{n}:{t}:{length}" for n, t, length in fields))


def write_tfrecords(directory, schema, rows, num_shards=2):
    from kaleido_tf.datasets import TFRecordShardWriter, shard_filename, write_schema_json

    os.makedirs(directory, exist_ok=True)
    for shard in range(num_shards):
        path = os.path.join(directory, shard_filename(shard, num_shards))
        with TFRecordShardWriter(path, schema, "float16") as writer:
            for row in rows[shard::num_shards]:
                writer.write(row)
    write_schema_json(directory, schema, "float16", None, num_examples=len(rows), num_shards=num_shards)
    return directory


def write_bundle(directory, schema, rows):
    from kaleido_tf.datasets.synthetic import format_tsv_line

    os.makedirs(directory, exist_ok=True)
    data = os.path.join(directory, "part-0.csv")
    with open(data, "w") as f:
        for row in rows:
            f.write(format_tsv_line(row, schema, float_decimals=3) + "\n")
    list_file = os.path.join(directory, "train.list_csv")
    with open(list_file, "w") as f:
        f.write("part-0.csv\n")
    return list_file


def reader_rate(dataset, batches, batch_size):
    iterator = iter(dataset)
    next(iterator)  # start-up (file opening, first parse) kept out
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="small")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--examples", type=int, default=64, help="distinct examples written (then repeated)")
    parser.add_argument("--batches", type=int, default=30, help="batches read per reader measurement")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    import tensorflow as tf

    from kaleido_tf.datasets import make_bundle_dataset, make_tfrecord_dataset
    from kaleido_tf.engines import Trainer
    from kaleido_tf.tasks import PretrainTask

    config = common.make_config(args.config)
    schema = pretrain_schema(config)
    rows = example_rows(config, args.examples)
    b = args.batch_size
    results = {"machine": common.machine_description(), "config": args.config, "batch": b}
    with tempfile.TemporaryDirectory() as tmp:
        shards = write_tfrecords(os.path.join(tmp, "tfrecord"), schema, rows)
        list_file = write_bundle(os.path.join(tmp, "bundle"), schema, rows)

        def tfrecord_fn(context=None):
            return make_tfrecord_dataset(shards, b, training=True, input_context=context, seed=1)

        results["tfrecord_reader_ex_per_s"] = reader_rate(tfrecord_fn(), args.batches, b)
        results["bundle_reader_ex_per_s"] = reader_rate(
            make_bundle_dataset(list_file, schema, b, training=True, seed=1), max(args.batches // 3, 3), b
        )

        # The Trainer's step from the reader and from constants, interleaved.
        trainer = Trainer(PretrainTask(config), os.path.join(tmp, "model"), train_steps=10**6, progress=False)
        fn = trainer.build_train_function(b)
        constant = {k: tf.constant(v) for k, v in common.pretrain_features(config, b).items()}
        from_reader = iter(trainer.strategy.distribute_datasets_from_function(tfrecord_fn))
        from_constants = iter(
            trainer.strategy.distribute_datasets_from_function(
                lambda context: tf.data.Dataset.from_tensors(constant).repeat()
            )
        )
        steps = {
            "step_from_tfrecord": lambda: float(fn(from_reader)["total"]),
            "step_from_constants": lambda: float(fn(from_constants)["total"]),
        }
        for step in steps.values():
            step()
        times = common.interleaved(steps, args.rounds, args.steps, desc=f"step {args.config} B={b}")
    for name, values in times.items():
        results[f"{name}_ex_per_s"] = b / common.median(values)
    results["step_tfrecord_vs_constants"] = common.paired_ratio(times, "step_from_tfrecord", "step_from_constants")
    results["tfrecord_reader_headroom"] = results["tfrecord_reader_ex_per_s"] / results["step_from_constants_ex_per_s"]
    for key, value in results.items():
        print(f"{key}: {value:.3g}" if isinstance(value, float) else f"{key}: {value}")
    if args.json:
        common.write_json(args.json, dict(results, benchmark="input_pipeline"))
    return results


if __name__ == "__main__":
    main()
