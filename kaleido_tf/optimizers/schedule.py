"""EasyTransfer's learning-rate schedule: linear warmup, then linear (polynomial, power 1) decay to 0."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kaleido_tf")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(step) = decayed(step) * (step / warmup_steps if step < warmup_steps else 1).

    decayed(step) = base_lr * (1 - min(step, train_steps) / train_steps). The step counter starts at 0, so the
    first update runs at learning rate 0 (ORIGINAL.md quirk 4). As in EasyTransfer's get_train_op, the warmup
    factor multiplies the already decayed rate.
    """

    def __init__(self, base_learning_rate, train_steps, warmup_steps=0):
        if train_steps <= 0:
            raise ValueError(f"train_steps must be positive, got {train_steps}")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.base_learning_rate = float(base_learning_rate)
        self.train_steps = int(train_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        progress = ops.minimum(step, float(self.train_steps)) / float(self.train_steps)
        decayed = self.base_learning_rate * (1.0 - progress)
        if self.warmup_steps == 0:
            return decayed
        in_warmup = ops.cast(step < float(self.warmup_steps), "float32")
        warmup = decayed * (step / float(self.warmup_steps))
        return (1.0 - in_warmup) * decayed + in_warmup * warmup

    def get_config(self):
        return {
            "base_learning_rate": self.base_learning_rate,
            "train_steps": self.train_steps,
            "warmup_steps": self.warmup_steps,
        }


def compute_train_steps(num_train_examples, num_epochs, global_batch_size):
    """EasyTransfer's arithmetic: int(examples * epochs / global batch) + 1."""
    if global_batch_size <= 0:
        raise ValueError(f"global batch size must be positive, got {global_batch_size}")
    return int(num_train_examples * num_epochs / global_batch_size) + 1


def compute_warmup_steps(train_steps, warmup_ratio=0.1):
    return int(train_steps * warmup_ratio)
