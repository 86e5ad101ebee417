"""One worker of a training that a SIGTERM may stop: the tiny golden model, `--steps` steps in one `train`
call under the strategy $TF_CONFIG asks for (MultiWorkerMirroredStrategy with two workers), each step slowed
by `--step_sleep` seconds so that a signal lands inside the run. Rerun with the same arguments, it resumes.

    python -m tests.reliability.preempt_worker MODEL_DIR [--steps K] [--step_sleep S] [--progress FILE]

Exits 143 with the trainer's line when stopped, 0 with "finished at step K" otherwise. `--progress FILE` is
created once the first step is done (the signal handler is in place from then on).
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model_dir")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--step_sleep", type=float, default=0.0)
    p.add_argument("--progress", default=None)
    args = p.parse_args()

    import numpy as np
    import tensorflow as tf

    from kaleido_tf.convert.tf1_converter import load_checkpoint_into_model
    from kaleido_tf.engines import Trainer, TrainingPreempted, get_strategy
    from kaleido_tf.engines.preemption import PREEMPTED_EXIT_CODE
    from kaleido_tf.model_zoo import KaleidoBERTConfig
    from kaleido_tf.tasks import PretrainTask
    from tests.conftest import GOLDEN

    strategy = get_strategy()
    golden = np.load(os.path.join(GOLDEN, "tiny", "golden.npz"))
    feats = {k[len("input/") :]: golden[k] for k in golden.files if k.startswith("input/")}
    data = {k: np.concatenate([v, v[::-1]]) for k, v in feats.items()}
    global_batch = 2 * len(next(iter(feats.values())))
    config = KaleidoBERTConfig.from_json_file(os.path.join(GOLDEN, "tiny", "config.json"))
    trainer = Trainer(
        PretrainTask(config), args.model_dir, strategy, learning_rate=1e-3, train_steps=args.steps, progress=False
    )
    write_scalars = trainer._write_scalars

    def slowed(name, values, step):  # called after every step (log_steps=1)
        time.sleep(args.step_sleep)
        write_scalars(name, values, step)
        if args.progress and not os.path.exists(args.progress):
            open(args.progress, "w").close()

    trainer.log_steps = 1
    trainer._write_scalars = slowed
    print(
        trainer.initialize(
            lambda m: (
                load_checkpoint_into_model(m, os.path.join(GOLDEN, "tiny", "model.ckpt-0"), log=False) and "golden"
            )
        ),
        flush=True,
    )

    def dataset_fn(context):
        # Every input pipeline walks the same global batches and keeps its slice of each (deterministic, so a
        # resumed run sees the batches an uninterrupted one would).
        per_pipeline = global_batch // context.num_input_pipelines
        start = context.input_pipeline_id * per_pipeline
        ds = tf.data.Dataset.from_tensor_slices(data).repeat().batch(global_batch)
        ds = ds.map(lambda b: {k: v[start : start + per_pipeline] for k, v in b.items()}).unbatch()
        return ds.batch(context.get_per_replica_batch_size(global_batch))

    try:
        trainer.train(dataset_fn, global_batch // strategy.num_replicas_in_sync)
    except TrainingPreempted as e:
        print(f"[kaleido_tf] {e}", flush=True)
        return PREEMPTED_EXIT_CODE
    print(f"finished at step {trainer.global_step}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
