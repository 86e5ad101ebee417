"""The ITC loss and its gradients on one device and under MirroredStrategy over 2 and 4 logical CPUs, in its own
process (logical devices must be set before TensorFlow starts); saves them as .npz.

    python -m tests.engines.itc_worker OUT.npz REPLICAS[,REPLICAS...]

One MirroredStrategy per process: strategies of different sizes in one process would share collective group
keys. One replica is OneDeviceStrategy (no collectives), so it shares a process with one MirroredStrategy.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

GLOBAL_BATCH = 8
REPLICAS = (1, 2, 4)
PROCESSES = ((1, 2), (4,))  # the replica counts each process runs


def main():
    import keras
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * max(REPLICAS))
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]

    from kaleido_tf.losses.itc_loss import itc_loss
    from kaleido_tf.model_zoo.kaleidobert_retrieval_model import KaleidoBERTRetrievalModel
    from tests.model_zoo.test_task_models import CONFIG, _features

    config = CONFIG.to_dict()
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    batches = [_features(seed) for seed in range(GLOBAL_BATCH // 2)]  # four batches of two
    data = {k: tf.concat([b[k] for b in batches], 0) for k in batches[0]}  # [8, ...], distinct examples

    keras.utils.set_random_seed(0)  # the same initial weights in every process
    reference = KaleidoBERTRetrievalModel(config, itc_embedding_size=4)
    reference.build()
    initial = reference.get_weights()
    results = {}
    for replicas in (int(n) for n in sys.argv[2].split(",")):
        if replicas == 1:
            strategy = tf.distribute.OneDeviceStrategy(devices[0])
        else:
            strategy = tf.distribute.MirroredStrategy(devices[:replicas])
        with strategy.scope():
            model = KaleidoBERTRetrievalModel(config, itc_embedding_size=4)
            model.build()
            model.set_weights(initial)
        per_replica = GLOBAL_BATCH // replicas

        def shard(context, per_replica=per_replica):
            start = context.replica_id_in_sync_group * per_replica
            return {k: v[start : start + per_replica] for k, v in data.items()}

        features = strategy.experimental_distribute_values_from_function(shard)

        @tf.function
        def step(features, model=model, strategy=strategy):
            def replica_fn(f):
                with tf.GradientTape() as tape:
                    out = model(f, training=True)
                    loss = itc_loss(out["text_embedding"], out["image_embedding"], out["temperature"], GLOBAL_BATCH)
                grads = tape.gradient(loss, model.trainable_variables)
                return loss, [
                    tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                    for g, v in zip(grads, model.trainable_variables)
                ]

            loss, grads = strategy.run(replica_fn, args=(features,))
            return strategy.reduce("SUM", loss, axis=None), [strategy.reduce("SUM", g, axis=None) for g in grads]

        loss, grads = step(features)
        results[f"loss_{replicas}"] = loss.numpy()
        for v, g in zip(model.trainable_variables, grads):
            results[f"grad_{replicas}__{v.path.replace('/', '__')}"] = g.numpy()
        full = model(data, training=True)  # the whole batch at once, for the test's NumPy reference
        for key in ("text_embedding", "image_embedding", "temperature"):
            results[f"{key}_{replicas}"] = full[key].numpy()
        results[f"replicas_{replicas}"] = strategy.num_replicas_in_sync
    np.savez(sys.argv[1], **results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
