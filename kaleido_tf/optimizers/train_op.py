"""The optimizer EasyTransfer's get_train_op builds, as a Keras 3 optimizer."""

import keras

from kaleido_tf.optimizers.adam_weight_decay import AdamWeightDecay
from kaleido_tf.optimizers.schedule import WarmupLinearDecay, compute_warmup_steps


def get_optimizer(learning_rate, train_steps, warmup_ratio=0.1, weight_decay=0.0, clip_norm=1.0, name=None):
    """Warmup + linear decay to 0; Adam (beta_2 0.98) without weight decay, else the AdamW variant
    (beta_2 0.999); gradients clipped by global norm `clip_norm` (None for no clipping).

    Keras' Adam computes exactly TF1's AdamOptimizer update (bias-corrected step size, epsilon added to
    sqrt(v)), so it is used as it is.
    """
    schedule = WarmupLinearDecay(learning_rate, train_steps, compute_warmup_steps(train_steps, warmup_ratio))
    common = {"learning_rate": schedule, "beta_1": 0.9, "epsilon": 1e-6, "global_clipnorm": clip_norm}
    if weight_decay > 0:
        return AdamWeightDecay(weight_decay_rate=weight_decay, beta_2=0.999, name=name or "adam_weight_decay", **common)
    return keras.optimizers.Adam(beta_2=0.98, name=name or "adam", **common)
