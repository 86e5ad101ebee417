"""Training engines: distribution strategy and the training loop."""

from kaleido_tf.engines.distribution import get_strategy, is_chief, split_cpu
from kaleido_tf.engines.preemption import TrainingPreempted
from kaleido_tf.engines.trainer import TRAINER_MARKER, Trainer, TrainingDivergedError

__all__ = [
    "TRAINER_MARKER",
    "Trainer",
    "TrainingDivergedError",
    "TrainingPreempted",
    "get_strategy",
    "is_chief",
    "split_cpu",
]
