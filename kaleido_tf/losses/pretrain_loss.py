"""The seven Kaleido-BERT pretraining losses, as the original computes them.

Shape legend: B batch, P masked text positions, V vocabulary, k masked patches of a level, F patch feature size.
"""

from keras import ops

from kaleido_tf.model_zoo.kaleidobert_pretrain_model import ROTATION_LABEL_KEYS
from kaleido_tf.utils.pretrain_tasks import LOSS_NAMES

# Keras' KLD clips both distributions to [1e-7, 1] before taking the log.
_KLD_EPSILON = 1e-7


def _labels(features, keys):
    for key in keys:
        if features.get(key) is not None:
            return ops.reshape(ops.cast(features[key], "int32"), (-1,))
    raise KeyError(f"features need one of {list(keys)} for this loss")


def _mean(values, global_count=None):
    """Mean of `values`, or, under a distribution strategy, this replica's share: sum / global count."""
    if global_count is None:
        return ops.mean(values)
    return ops.sum(values) / ops.cast(global_count, values.dtype)


def masked_lm_loss(mlm_logits, masked_lm_ids, masked_lm_weights, weight_total=None):
    """sum(weight * cross-entropy) / (sum(weight) + 1e-5) over the masked positions. logits: [B*P, V].

    weight_total: the sum of the weights over all replicas, when this batch is one replica's share.
    """
    log_probs = ops.log_softmax(ops.cast(mlm_logits, "float32"), axis=-1)  # [B*P, V]
    ids = ops.reshape(ops.cast(masked_lm_ids, "int32"), (-1,))  # [B*P]
    weights = ops.reshape(ops.cast(masked_lm_weights, "float32"), (-1,))  # [B*P]
    per_position = -ops.take_along_axis(log_probs, ops.expand_dims(ids, -1), axis=-1)[:, 0]  # [B*P]
    denominator = ops.sum(weights) if weight_total is None else ops.cast(weight_total, "float32")
    return ops.sum(weights * per_position) / (denominator + 1e-5)


def classification_loss(logits, labels, global_batch_size=None):
    """Mean softmax cross-entropy over the batch. logits: [B, C]; labels: [B] or [B, 1]."""
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)  # [B, C]
    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    return -_mean(ops.take_along_axis(log_probs, ops.expand_dims(labels, -1), axis=-1)[:, 0], global_batch_size)


def kl_divergence(target_probs, pred_probs):
    """Keras KLD: sum(t * log(t / p)) over the last axis, both clipped to [1e-7, 1]."""
    t = ops.clip(target_probs, _KLD_EPSILON, 1.0)
    p = ops.clip(pred_probs, _KLD_EPSILON, 1.0)
    return ops.sum(t * ops.log(t / p), axis=-1)


def patch_reconstruction_loss(
    logits, target, num_masked, patch_feature_size, target_softmax_per_patch=True, global_batch_size=None
):
    """Mean KL(softmax(target) || softmax(logits)) over the masked patches.

    logits: [B*k, F]. target: [B*k, F] or [B, k*F]. With target_softmax_per_patch=False the target softmax
    spans each example's k patches at once, as the original grey-mask loss does (ORIGINAL.md quirk 3).
    """
    pred = ops.reshape(ops.softmax(ops.cast(logits, "float32"), axis=-1), (-1, num_masked, patch_feature_size))
    target = ops.cast(target, "float32")
    if target_softmax_per_patch:
        target = ops.reshape(target, (-1, patch_feature_size))  # [B*k, F]
    else:
        target = ops.reshape(target, (-1, num_masked * patch_feature_size))  # [B, k*F]
    target_probs = ops.reshape(ops.softmax(target, axis=-1), (-1, num_masked, patch_feature_size))  # [B, k, F]
    per_patch = kl_divergence(target_probs, pred)  # [B, k]
    return _mean(per_patch, None if global_batch_size is None else global_batch_size * num_masked)


def pretrain_losses(
    outputs, features, config, grey_target_per_patch=False, global_batch_size=None, mlm_weight_total=None
):
    """The seven losses and their unweighted sum under "total".

    Args:
        outputs: the dict a KaleidoBERTPretrainModel returns.
        features: the input dict (labels by their input-schema names).
        config: the model's KaleidoBERTConfig.
        grey_target_per_patch: take the grey-mask target softmax per patch (corrected behaviour) instead of
            over both masked patches at once (the original's quirk 3, the default).
        global_batch_size, mlm_weight_total: when `features` is one replica's share of a global batch, the global
            batch size and the global sum of `masked_lm_weights`; each loss is then this replica's share, and
            the replicas' shares add up to the loss of the whole batch on one device.
    """
    g = global_batch_size

    def reconstruction(task, target, num_patches, target_softmax_per_patch):
        return patch_reconstruction_loss(
            outputs[f"{task}_logits"],
            target,
            num_patches,
            config.patch_feature_size,
            target_softmax_per_patch=target_softmax_per_patch,
            global_batch_size=g,
        )

    losses = {
        "masked_lm_loss": masked_lm_loss(
            outputs["mlm_logits"], features["masked_lm_ids"], features["masked_lm_weights"], mlm_weight_total
        ),
        "next_sentence_loss": classification_loss(outputs["nsp_logits"], _labels(features, ("nx_sent_labels",)), g),
        "rotation_loss": classification_loss(outputs["rotation_logits"], _labels(features, ROTATION_LABEL_KEYS), g),
        "jigsaw_loss": classification_loss(outputs["jigsaw_logits"], _labels(features, ("img_jigsaw_gt",)), g),
        "camouflage_loss": classification_loss(
            outputs["camouflage_logits"], _labels(features, ("img_camouflage_gt",)), g
        ),
        "greymask_loss": reconstruction(
            "greymask", features["img_grey_mask_gt"], config.masked_greymask_patch_num, grey_target_per_patch
        ),
        "blankmask_loss": reconstruction(
            "blankmask", outputs["target_raw_blank_features"], config.masked_blankmask_patch_num, True
        ),
    }
    total = losses["masked_lm_loss"]
    for name in LOSS_NAMES[1:]:
        total = total + losses[name]
    losses["total"] = total
    return losses
