"""Losses, laid out as EasyTransfer's `losses` package."""

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
    "kl_divergence",
    "masked_lm_loss",
    "patch_reconstruction_loss",
    "pretrain_losses",
]
