"""Optimizers and learning-rate schedules, laid out as EasyTransfer's `optimizers` package."""

from kaleido_tf.optimizers.adam_weight_decay import AdamWeightDecay
from kaleido_tf.optimizers.schedule import WarmupLinearDecay, compute_train_steps, compute_warmup_steps
from kaleido_tf.optimizers.train_op import get_optimizer

__all__ = ["AdamWeightDecay", "WarmupLinearDecay", "compute_train_steps", "compute_warmup_steps", "get_optimizer"]
