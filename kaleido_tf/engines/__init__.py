"""Engines: distribution strategy, the training loop and prediction.

Importing the package is cheap (TensorFlow loads with the first name used), so a process that needs only the
model-directory lock (`kaleido_tf.engines.model_dir_lock`) starts at once.
"""

from kaleido_tf.utils.lazy_names import lazy_getattr

_LAZY = {
    "get_strategy": "kaleido_tf.engines.distribution",
    "is_chief": "kaleido_tf.engines.distribution",
    "split_cpu": "kaleido_tf.engines.distribution",
    "Predictor": "kaleido_tf.engines.predictor",
    "TrainingPreempted": "kaleido_tf.engines.preemption",
    "TRAINER_MARKER": "kaleido_tf.engines.trainer",
    "Trainer": "kaleido_tf.engines.trainer",
    "TrainingDivergedError": "kaleido_tf.engines.trainer",
}


__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = sorted(_LAZY)
