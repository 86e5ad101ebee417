"""Losses, laid out as EasyTransfer's `losses` package."""

from kaleido_tf.losses.itc_loss import itc_loss, itc_similarities
from kaleido_tf.losses.pretrain_loss import (
    LOSS_NAMES,
    classification_loss,
    kl_divergence,
    masked_lm_loss,
    patch_reconstruction_loss,
    pretrain_losses,
)

__all__ = [
    "LOSS_NAMES",
    "classification_loss",
    "itc_loss",
    "itc_similarities",
    "kl_divergence",
    "masked_lm_loss",
    "patch_reconstruction_loss",
    "pretrain_losses",
]
