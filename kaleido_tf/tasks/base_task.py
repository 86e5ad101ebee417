"""The task interface the trainer drives (after Model Garden's tasks): the model, its losses and metrics, and
one training, validation and prediction step. The trainer owns only the loop, distribution and checkpoints.

Under a tf.distribute strategy the steps run once per replica on that replica's share of the global batch;
`global_batch_size` lets a task scale its losses so that the replicas' gradients add up to the gradient of the
whole batch on one device.
"""

import numpy as np
import tensorflow as tf


class Task:
    name = "task"

    def build_model(self):
        raise NotImplementedError

    def compute_losses(self, outputs, features, global_batch_size=None):
        """A dict of scalar losses with the optimised one under "total"."""
        raise NotImplementedError

    def training_losses(self, features, model, global_batch_size=None):
        """The losses of a training forward pass (`compute_gradients` records it on its tape)."""
        outputs = model(features, training=True)
        return self.compute_losses(outputs, features, global_batch_size)

    def compute_gradients(self, features, model, global_batch_size=None, loss_scale=None):
        """Forward and backward pass on this replica's share of the batch.

        Returns (losses, gradients): the gradients are dense and follow `model.trainable_variables`; the
        losses and gradients of all replicas add up to those of the whole batch on one device. With
        `loss_scale` (mixed float16), the gradients are those of `loss_scale * total` (the losses are not
        scaled): the caller unscales them.
        """
        with tf.GradientTape() as tape:
            losses = self.training_losses(features, model, global_batch_size)
            objective = losses["total"]
            if loss_scale is not None:
                objective = objective * tf.cast(loss_scale, objective.dtype)
        variables = model.trainable_variables
        grads = tape.gradient(objective, variables)
        grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g) for g, v in zip(grads, variables)]
        return losses, grads

    def train_step(self, features, model, optimizer):
        """One optimizer step on one device; returns the losses before the update."""
        losses, grads = self.compute_gradients(features, model)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return losses

    def validation_step(self, features, model, global_batch_size=None):
        """Tensors to aggregate over the evaluation set: scalars are summed, rank >= 1 concatenated."""
        raise NotImplementedError

    def reduce_validation(self, aggregated):
        """The metrics dict from the aggregated validation tensors (numpy)."""
        raise NotImplementedError

    def predict_step(self, features, model):
        raise NotImplementedError


def aggregate(state, step_logs):
    """Folds one step's numpy logs into `state`: scalars summed, arrays concatenated along axis 0."""
    state = dict(state or {})
    for key, value in step_logs.items():
        value = np.asarray(value)
        if key not in state:
            state[key] = value if value.ndim else value.astype(np.float64)
        elif value.ndim:
            state[key] = np.concatenate([state[key], value], axis=0)
        else:
            state[key] = state[key] + value
    return state
