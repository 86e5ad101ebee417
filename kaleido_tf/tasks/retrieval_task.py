"""Retrieval finetuning: ITC over the global batch plus ITM on hard negatives drawn from the ITC similarities.

Shape legend: b this replica's batch, D embedding size. The recipe is ALBEF's (docs/retrieval.md): for every
text one negative image of the batch, drawn with probability softmax(similarity) over the other images, and
for every image one negative text the same way; the ITM head then scores the b positive and 2b negative pairs.
"""

import numpy as np
import tensorflow as tf

from kaleido_tf.losses import classification_loss, itc_loss, itc_similarities
from kaleido_tf.model_zoo.kaleidobert_pretrain_model import as_config
from kaleido_tf.model_zoo.kaleidobert_retrieval_model import KaleidoBERTRetrievalModel
from kaleido_tf.tasks.base_task import Task

TEXT_KEYS = ("input_ids", "input_mask", "segment_ids")
IMAGE_KEY_PREFIXES = ("img_feature_convert_", "img_loc_position_", "img_feature_", "image_mask")


def sample_hard_negatives(similarities, seed=None):
    """For every row one column other than its own, drawn with probability softmax(row) over the others.

    similarities: [b, b] logits (row i's positive is column i); b >= 2. Returns int32 [b]. No gradient flows.
    """
    sims = tf.stop_gradient(tf.cast(similarities, tf.float32))  # [b, b]
    diagonal = tf.eye(tf.shape(sims)[0], dtype=tf.bool)  # [b, b]
    logits = tf.where(diagonal, tf.fill(tf.shape(sims), -np.inf), sims)  # the positive can never be drawn
    return tf.cast(tf.random.categorical(logits, 1, seed=seed)[:, 0], tf.int32)  # [b]


def _split_features(features):
    text = {k: features[k] for k in TEXT_KEYS if features.get(k) is not None}
    image = {k: v for k, v in features.items() if k.startswith(IMAGE_KEY_PREFIXES) and v is not None}
    return text, image


def in_batch_recall_at_1(similarities):
    """(text->image hits, image->text hits) of a [b, b] similarity matrix whose diagonal holds the pairs."""
    labels = tf.range(tf.shape(similarities)[0], dtype=tf.int32)
    t2i = tf.reduce_sum(tf.cast(tf.argmax(similarities, 1, output_type=tf.int32) == labels, tf.float32))
    i2t = tf.reduce_sum(tf.cast(tf.argmax(similarities, 0, output_type=tf.int32) == labels, tf.float32))
    return t2i, i2t


class RetrievalTask(Task):
    """ITC (weight `itc_weight`) + ITM on in-batch hard negatives (weight `itm_weight`).

    Every example is a matching (text, image) pair; the batch must hold at least two.

    Args:
        config: KaleidoBERTConfig (or dict).
        itc_weight, itm_weight: weights of the two losses in "total"; itm_weight 0 skips the negatives.
        model_kwargs: passed to KaleidoBERTRetrievalModel (itc_embedding_size, itc_temperature, use_image_mask...).
    """

    name = "retrieval"

    def __init__(self, config, itc_weight=1.0, itm_weight=1.0, **model_kwargs):
        self.config = as_config(config)
        self.itc_weight = float(itc_weight)
        self.itm_weight = float(itm_weight)
        self.model_kwargs = model_kwargs

    def build_model(self):
        model = KaleidoBERTRetrievalModel(self.config, **self.model_kwargs)
        model.build()
        return model

    def _losses(self, model, features, training, global_batch_size=None):
        outputs = model(features, training=training)
        text, image, t = outputs["text_embedding"], outputs["image_embedding"], outputs["temperature"]
        losses = {"itc_loss": itc_loss(text, image, t, global_batch_size)}
        total = self.itc_weight * losses["itc_loss"]
        if self.itm_weight:
            similarities = itc_similarities(text, image, t)  # [b, b]
            negative_images = sample_hard_negatives(similarities)  # [b]: per text
            negative_texts = sample_hard_negatives(tf.transpose(similarities))  # [b]: per image
            text_part, image_part = _split_features(features)
            # b (text i, hard image) pairs, then b (hard text, image i) pairs.
            negatives = {k: tf.concat([v, tf.gather(v, negative_texts)], 0) for k, v in text_part.items()}
            negatives.update({k: tf.concat([tf.gather(v, negative_images), v], 0) for k, v in image_part.items()})
            negative_logits = model.itm_logits(negatives, training=training)  # [2b, 2]
            logits = tf.concat([outputs["itm_logits"], negative_logits], 0)  # [3b, 2]
            b = tf.shape(text)[0]
            labels = tf.concat([tf.ones([b], tf.int32), tf.zeros([2 * b], tf.int32)], 0)  # [3b]
            g = None if global_batch_size is None else 3 * global_batch_size
            losses["itm_loss"] = classification_loss(logits, labels, g)
            total = total + self.itm_weight * losses["itm_loss"]
        losses["total"] = total
        return losses, outputs

    def training_losses(self, features, model, global_batch_size=None):
        return self._losses(model, features, True, global_batch_size)[0]

    def compute_losses(self, outputs, features, global_batch_size=None):
        raise NotImplementedError("the retrieval losses need the model (hard negatives): use compute_gradients")

    def validation_step(self, features, model, global_batch_size=None):
        losses, outputs = self._losses(model, features, False)
        batch = tf.cast(tf.shape(outputs["text_embedding"])[0], tf.float32)
        logs = {f"{name}_sum": value * batch for name, value in losses.items()}
        sims = itc_similarities(outputs["text_embedding"], outputs["image_embedding"], outputs["temperature"])
        logs["t2i_hits"], logs["i2t_hits"] = in_batch_recall_at_1(sims)
        logs["examples"] = batch
        return logs

    def reduce_validation(self, aggregated):
        examples = max(float(aggregated.get("examples", 0.0)), 1.0)
        metrics = {k[: -len("_sum")]: float(v) / examples for k, v in aggregated.items() if k.endswith("_sum")}
        metrics["in_batch_t2i_recall@1"] = float(aggregated.get("t2i_hits", 0.0)) / examples
        metrics["in_batch_i2t_recall@1"] = float(aggregated.get("i2t_hits", 0.0)) / examples
        return metrics

    def predict_step(self, features, model):
        text, image = _split_features(features)
        return {"text_embedding": model.embed_text(text), "image_embedding": model.embed_image(image)}
