"""Engines: distribution strategy, the training loop and prediction."""

from kaleido_tf.engines.distribution import get_strategy, is_chief, split_cpu
from kaleido_tf.engines.predictor import Predictor
from kaleido_tf.engines.preemption import TrainingPreempted
from kaleido_tf.engines.trainer import TRAINER_MARKER, Trainer, TrainingDivergedError

__all__ = [
    "TRAINER_MARKER",
    "Predictor",
    "Trainer",
    "TrainingDivergedError",
    "TrainingPreempted",
    "get_strategy",
    "is_chief",
    "split_cpu",
]
