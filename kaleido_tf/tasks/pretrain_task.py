"""The pretraining task: model, the seven losses, the accuracies, and the training step."""

import tensorflow as tf

from kaleido_tf.evaluators.pretrain import pretrain_metric_values
from kaleido_tf.losses import LOSS_NAMES, itc_loss, pretrain_losses
from kaleido_tf.model_zoo.kaleidobert_pretrain_model import KaleidoBERTPretrainModel, as_config
from kaleido_tf.tasks.base_task import Task
from kaleido_tf.utils.pretrain_tasks import PRETRAIN_TASKS
from kaleido_tf.utils.replicas import replica_sum


class PretrainTask(Task):
    """Kaleido-BERT pretraining.

    Args:
        config: KaleidoBERTConfig (or dict).
        grey_target_per_patch: corrected grey-mask target (see `pretrain_losses`); the original quirk by default.
        loss_weights: {loss name: weight} for the optimised "total" (names not given weigh 1; e.g. an ITM-only
            phase: every other loss 0). None keeps the original unweighted sum of the seven. "itc" (default 0)
            adds the image-text contrastive loss over the global batch (losses/itc_loss.py) and an ITC head
            to the model (`itc_embedding_size`, 256 by default).
        model_kwargs: passed to KaleidoBERTPretrainModel (use_image_mask, fused_qkv, dtype).
    """

    name = "pretrain"

    def __init__(self, config, grey_target_per_patch=False, loss_weights=None, **model_kwargs):
        self.config = as_config(config)
        self.grey_target_per_patch = grey_target_per_patch
        unknown = sorted(set(loss_weights or {}) - set(LOSS_NAMES) - {"itc"})
        if unknown:
            raise ValueError(f"loss_weights names {unknown} are not losses; the losses: {', '.join(LOSS_NAMES)}")
        self.loss_weights = dict(loss_weights) if loss_weights else None
        self.itc_weight = float((loss_weights or {}).get("itc", 0.0))
        if self.itc_weight:
            model_kwargs.setdefault("itc_embedding_size", 256)
        self.model_kwargs = model_kwargs

    def build_model(self):
        model = KaleidoBERTPretrainModel(self.config, **self.model_kwargs)
        model.build()
        return model

    def compute_losses(self, outputs, features, global_batch_size=None):
        weight_total = None
        if global_batch_size is not None:
            weight_total = replica_sum(tf.reduce_sum(tf.cast(features["masked_lm_weights"], tf.float32)))
        losses = pretrain_losses(
            outputs,
            features,
            self.config,
            grey_target_per_patch=self.grey_target_per_patch,
            global_batch_size=global_batch_size,
            mlm_weight_total=weight_total,
        )
        if self.loss_weights:
            losses = dict(losses)
            losses["total"] = tf.add_n([losses[name] * float(self.loss_weights.get(name, 1.0)) for name in LOSS_NAMES])
        if self.itc_weight:
            losses["itc_loss"] = itc_loss(
                outputs["itc_text_embedding"],
                outputs["itc_image_embedding"],
                outputs["itc_temperature"],
                global_batch_size,
            )
            losses["total"] = losses["total"] + self.itc_weight * losses["itc_loss"]
        return losses

    def validation_step(self, features, model, global_batch_size=None):

        outputs = model(features, training=False)
        batch = tf.cast(tf.shape(features["input_ids"])[0], tf.float32)
        losses = self.compute_losses(outputs, features)
        logs = {f"{name}_sum": losses[name] * batch for name in (*LOSS_NAMES, "total")}
        logs["examples"] = batch
        for task, (correct, count) in pretrain_metric_values(outputs, features).items():
            logs[f"{task}_correct"] = correct
            logs[f"{task}_count"] = count
        return logs

    def reduce_validation(self, aggregated):
        examples = max(float(aggregated.get("examples", 0.0)), 1.0)
        metrics = {name: float(aggregated[f"{name}_sum"]) / examples for name in (*LOSS_NAMES, "total")}
        for task in PRETRAIN_TASKS:
            if f"{task}_count" in aggregated:
                metrics[f"{task}_accuracy"] = float(aggregated[f"{task}_correct"]) / max(
                    float(aggregated[f"{task}_count"]), 1e-12
                )
        return metrics

    def predict_step(self, features, model):
        if hasattr(model, "itm_logits"):
            # The ITM head alone (the values of the full predict-mode call, without the unused heads).
            outputs = model.itm_logits(features, training=False)
        else:
            outputs = model(features, training=False, mode="predict")
        return {"nsp_logits": outputs["nsp_logits"], "pooled_output": outputs["pooled_output"]}
