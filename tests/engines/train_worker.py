"""Trains the tiny golden model for a few steps under a strategy, in its own process (device setup and
TF_CONFIG must be fixed before TensorFlow starts); saves the final weights and step losses as .npz.

    python -m tests.engines.train_worker OUT.npz [--cpu_replicas N] [--steps K]
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--cpu_replicas", type=int, default=0)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--model_dir", default=None)
    args = p.parse_args()

    import numpy as np
    import tensorflow as tf

    from kaleido_tf.engines import Trainer, get_strategy

    strategy = get_strategy(cpu_replicas=args.cpu_replicas)
    from kaleido_tf.convert.tf1_converter import load_checkpoint_into_model
    from kaleido_tf.model_zoo import KaleidoBERTConfig
    from kaleido_tf.tasks import PretrainTask
    from tests.conftest import GOLDEN

    golden = np.load(os.path.join(GOLDEN, "tiny", "golden.npz"))
    feats = {k[len("input/") :]: golden[k] for k in golden.files if k.startswith("input/")}
    # 12 examples: the golden batch four times, reversed and rolled so that the replicas see different data.
    data = {k: np.concatenate([v, v[::-1], np.roll(v, 1, axis=0), v]) for k, v in feats.items()}
    global_batch = 12
    config = KaleidoBERTConfig.from_json_file(os.path.join(GOLDEN, "tiny", "config.json"))
    model_dir = args.model_dir or os.path.join(os.path.dirname(args.out), "model_dir")
    trainer = Trainer(
        PretrainTask(config),
        model_dir,
        strategy,
        learning_rate=1e-3,
        train_steps=args.steps,
        progress=False,
        log_steps=1,
    )
    trainer.initialize(
        lambda m: load_checkpoint_into_model(m, os.path.join(GOLDEN, "tiny", "model.ckpt-0"), log=False) and "golden"
    )
    replicas = strategy.num_replicas_in_sync

    def dataset_fn(context):
        # Every input pipeline (one per worker) walks the same global batches and keeps its slice of each;
        # the replicas of a worker take its per-replica batches in turn.
        per_pipeline = global_batch // context.num_input_pipelines
        start = context.input_pipeline_id * per_pipeline
        ds = tf.data.Dataset.from_tensor_slices(data).repeat().batch(global_batch)
        ds = ds.map(lambda b: {k: v[start : start + per_pipeline] for k, v in b.items()}).unbatch()
        return ds.batch(context.get_per_replica_batch_size(global_batch))

    losses = []
    for _ in range(args.steps):
        logs = trainer.train(dataset_fn, global_batch // replicas, stop_at_step=trainer.global_step + 1)
        losses.append(logs["total"])
    weights = {v.path: v.numpy() for v in trainer.model.weights}
    np.savez(
        args.out, losses=np.array(losses), replicas=replicas, **{k.replace("/", "__"): v for k, v in weights.items()}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
