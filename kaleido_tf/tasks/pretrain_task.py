"""The pretraining task: model, the seven losses, and the training step."""

import tensorflow as tf

from kaleido_tf.losses import pretrain_losses
from kaleido_tf.model_zoo.kaleidobert_pretrain_model import KaleidoBERTPretrainModel, as_config


class PretrainTask:
    """Kaleido-BERT pretraining.

    Args:
        config: KaleidoBERTConfig (or dict).
        grey_target_per_patch: corrected grey-mask target (see `pretrain_losses`); the original quirk by default.
        model_kwargs: passed to KaleidoBERTPretrainModel (use_image_mask, fused_qkv, dtype).
    """

    name = "pretrain"

    def __init__(self, config, grey_target_per_patch=False, **model_kwargs):
        self.config = as_config(config)
        self.grey_target_per_patch = grey_target_per_patch
        self.model_kwargs = model_kwargs

    def build_model(self):
        model = KaleidoBERTPretrainModel(self.config, **self.model_kwargs)
        model.build()
        return model

    def build_losses(self, outputs, features):
        return pretrain_losses(outputs, features, self.config, grey_target_per_patch=self.grey_target_per_patch)

    def train_step(self, features, model, optimizer):
        """One optimizer step on one batch; returns the losses (before the update)."""
        with tf.GradientTape() as tape:
            outputs = model(features, training=True)
            losses = self.build_losses(outputs, features)
        variables = model.trainable_variables
        grads = tape.gradient(losses["total"], variables)
        optimizer.apply_gradients(zip(grads, variables))
        return losses

    def validation_step(self, features, model):
        outputs = model(features, training=False)
        return self.build_losses(outputs, features), outputs
