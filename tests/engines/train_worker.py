"""Trains the tiny golden model, with the ITC loss, in its own process (the CPU split and TF_CONFIG must be
fixed before TensorFlow starts): `--steps` steps in one `train` call under the strategy $TF_CONFIG asks for
(MultiWorkerMirroredStrategy when it names several workers) or `--cpu_replicas` logical CPUs (MirroredStrategy)
or one device. Rerun with the same arguments, it resumes from MODEL_DIR's checkpoint.

    python -m tests.engines.train_worker MODEL_DIR [--steps K] [--cpu_replicas N] [--out OUT.npz]
        [--one_device_out OUT.npz] [--step_sleep S] [--progress FILE]

--out: saves the final weights (`w:<path>`), the ITC head's initial ones (`init:<path>`), each step's losses
(`loss:<name>`) and the replica count. --one_device_out: first trains the same on one device (in MODEL_DIR's
sibling `<MODEL_DIR>-one_device`) and saves that there, so one process gives the reference and the strategy's
run. --step_sleep: each step slowed by S seconds, so that a signal lands inside the run. --progress FILE: created
once the first step is done (the SIGTERM handler is in place from then on). Exits 143 with the trainer's line
when stopped by SIGTERM, 0 with "finished at step K" otherwise.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

GLOBAL_BATCH = 12
ITC_WEIGHT = 0.5


def _train(args, strategy, model_dir, out):
    import keras
    import numpy as np
    import tensorflow as tf

    from kaleido_tf.convert.tf1_converter import load_checkpoint_into_model
    from kaleido_tf.engines import Trainer, TrainingPreempted
    from kaleido_tf.engines.preemption import PREEMPTED_EXIT_CODE
    from kaleido_tf.model_zoo import KaleidoBERTConfig
    from kaleido_tf.tasks import PretrainTask
    from tests.conftest import GOLDEN

    golden = np.load(os.path.join(GOLDEN, "tiny", "golden.npz"))
    feats = {k[len("input/") :]: golden[k] for k in golden.files if k.startswith("input/")}
    # 12 examples: the golden batch four times, reversed and rolled so that the replicas see different data.
    data = {k: np.concatenate([v, v[::-1], np.roll(v, 1, axis=0), v]) for k, v in feats.items()}
    config = KaleidoBERTConfig.from_json_file(os.path.join(GOLDEN, "tiny", "config.json"))
    keras.utils.set_random_seed(0)  # the fresh ITC head starts the same in every process and every run
    trainer = Trainer(
        PretrainTask(config, loss_weights={"itc": ITC_WEIGHT}),
        model_dir,
        strategy,
        learning_rate=1e-3,
        train_steps=args.steps,
        progress=False,
        log_steps=1,
    )
    write_scalars = trainer._write_scalars

    def slowed(name, values, step):  # called after every step (log_steps=1)
        time.sleep(args.step_sleep)
        write_scalars(name, values, step)
        if args.progress and not os.path.exists(args.progress):
            open(args.progress, "w").close()

    trainer._write_scalars = slowed
    golden_ckpt = os.path.join(GOLDEN, "tiny", "model.ckpt-0")
    print(
        trainer.initialize(
            lambda m: load_checkpoint_into_model(m, golden_ckpt, allow_fresh=(r"itc_head/.+",), log=False) and "golden"
        ),
        flush=True,
    )
    initial = {v.path: v.numpy() for v in trainer.model.weights if "itc_head" in v.path}
    replicas = strategy.num_replicas_in_sync

    def dataset_fn(context):
        # Every input pipeline (one per worker) walks the same global batches and keeps its slice of each
        # (deterministic, so a resumed run sees the batches an uninterrupted one would); the replicas of a
        # worker take its per-replica batches in turn.
        per_pipeline = GLOBAL_BATCH // context.num_input_pipelines
        start = context.input_pipeline_id * per_pipeline
        ds = tf.data.Dataset.from_tensor_slices(data).repeat().batch(GLOBAL_BATCH)
        ds = ds.map(lambda b: {k: v[start : start + per_pipeline] for k, v in b.items()}).unbatch()
        return ds.batch(context.get_per_replica_batch_size(GLOBAL_BATCH))

    try:
        trainer.train(dataset_fn, GLOBAL_BATCH // replicas)
    except TrainingPreempted as e:
        print(f"[kaleido_tf] {e}", flush=True)
        return PREEMPTED_EXIT_CODE
    print(f"finished at step {trainer.global_step}", flush=True)
    if out:
        names = trainer.history[-1][1].keys()
        losses = {f"loss:{k}": np.array([logs[k] for _, logs in trainer.history]) for k in names}
        weights = {f"w:{v.path}".replace("/", "__"): v.numpy() for v in trainer.model.weights}
        start = {f"init:{k}".replace("/", "__"): v for k, v in initial.items()}
        np.savez(out, replicas=replicas, **losses, **weights, **start)
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model_dir")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--cpu_replicas", type=int, default=0)
    p.add_argument("--out", default=None)
    p.add_argument("--one_device_out", default=None)
    p.add_argument("--step_sleep", type=float, default=0.0)
    p.add_argument("--progress", default=None)
    args = p.parse_args()

    import tensorflow as tf

    from kaleido_tf.engines import get_strategy

    strategy = get_strategy(cpu_replicas=args.cpu_replicas)  # splits the CPU first, before any device use
    if args.one_device_out:
        one_device = tf.distribute.OneDeviceStrategy("/cpu:0")
        code = _train(args, one_device, args.model_dir + "-one_device", args.one_device_out)
        if code:
            return code
    return _train(args, strategy, args.model_dir, args.out)


if __name__ == "__main__":
    sys.exit(main())
