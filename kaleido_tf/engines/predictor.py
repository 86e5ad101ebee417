"""Prediction without training state: a task's model restored from weights, run batch by batch under a strategy.

`Predictor(task, strategy).load(source)` builds the model and loads it from `source` (a training model_dir or one
of its checkpoints, a converted directory, a TF1 checkpoint or a model-zoo name; see `model_zoo.registry`): no
optimizer, no CheckpointManager, nothing written. `predict(dataset_fn)` yields one numpy dict per global batch.
"""

import numpy as np
import tensorflow as tf

from kaleido_tf.model_zoo import registry


def local_numpy(strategy, value):
    """A distributed value as one numpy array: scalars summed over the replicas, tensors concatenated on axis 0."""
    arrays = [np.asarray(part) for part in strategy.experimental_local_results(value)]
    if arrays[0].ndim == 0:
        return np.sum(arrays)
    return np.concatenate(arrays, axis=0)


def predict_batches(strategy, task, model, dataset_fn, passthrough=()):
    """Yields per-batch numpy dicts of `task.predict_step` plus the `passthrough` features (e.g. ids).

    dataset_fn(input_context) -> a dataset of per-replica batches.
    """

    @tf.function(autograph=False)
    def predict_fn(features):
        out = task.predict_step(features, model)
        out.update({k: features[k] for k in passthrough if k in features})
        return out

    dataset = strategy.distribute_datasets_from_function(dataset_fn)
    for features in dataset:
        result = strategy.run(predict_fn, args=(features,))
        yield {k: local_numpy(strategy, v) for k, v in result.items()}


class Predictor:
    """A task's model for prediction only.

    Args:
        task: a kaleido_tf Task (builds the model, defines `predict_step`).
        strategy: a tf.distribute strategy (one device by default).
    """

    def __init__(self, task, strategy=None):
        self.task = task
        self.strategy = strategy or tf.distribute.get_strategy()
        with self.strategy.scope():
            self.model = task.build_model()
        self.load_message = None

    def load(self, source):
        """Loads the model's weights from `source`, strictly; returns self (the sentence is `load_message`)."""
        self.load_message = registry.load_weights(self.model, source)
        return self

    def predict(self, dataset_fn, passthrough=()):
        """Yields per-batch numpy dicts of the task's predictions plus the `passthrough` features."""
        return predict_batches(self.strategy, self.task, self.model, dataset_fn, passthrough)
