"""Category / subcategory finetuning: a class head on the pooled output, softmax cross-entropy."""

import numpy as np
import tensorflow as tf

from kaleido_tf.evaluators.classification import classification_report
from kaleido_tf.losses import classification_loss
from kaleido_tf.model_zoo.kaleidobert_classifier import TASKS, KaleidoBERTClassifier
from kaleido_tf.model_zoo.kaleidobert_pretrain_model import as_config
from kaleido_tf.tasks.base_task import Task

# Task -> the label feature of the input schema.
LABEL_FEATURES = {"catepred": "img_category_id", "subcatepred": "img_subcategory_id"}


class ClassificationTask(Task):
    """Finetuning for `catepred` (48 classes by default) or `subcatepred` (122).

    Args:
        config: KaleidoBERTConfig.
        task: "catepred" or "subcatepred".
        num_classes: overrides the default count.
        class_names: names by class id, for the per-class report.
    """

    def __init__(self, config, task="catepred", num_classes=None, class_names=None, **model_kwargs):
        if task not in TASKS:
            raise ValueError(f"--task must be one of {sorted(TASKS)}, got {task!r}")
        self.config = as_config(config)
        self.name = task
        self.num_classes = int(num_classes or TASKS[task][1])
        self.class_names = class_names
        self.label_feature = LABEL_FEATURES[task]
        self.model_kwargs = model_kwargs

    def build_model(self):
        model = KaleidoBERTClassifier(self.config, task=self.name, num_classes=self.num_classes, **self.model_kwargs)
        model.build()
        return model

    def _labels(self, features):
        if features.get(self.label_feature) is None:
            raise KeyError(f"the input schema has no `{self.label_feature}` field, needed by --task={self.name}")
        return tf.reshape(tf.cast(features[self.label_feature], tf.int32), [-1])

    def compute_losses(self, outputs, features, global_batch_size=None):
        loss = classification_loss(outputs["logits"], self._labels(features), global_batch_size)
        return {"classification_loss": loss, "total": loss}

    def validation_step(self, features, model, global_batch_size=None):
        outputs = model(features, training=False)
        labels = self._labels(features)
        loss = classification_loss(outputs["logits"], labels)
        batch = tf.cast(tf.shape(labels)[0], tf.float32)
        return {
            "loss_sum": loss * batch,
            "examples": batch,
            "labels": labels,
            "predictions": tf.argmax(outputs["logits"], axis=-1, output_type=tf.int32),
        }

    def reduce_validation(self, aggregated):
        labels = np.asarray(aggregated.get("labels", []), np.int64)
        preds = np.asarray(aggregated.get("predictions", []), np.int64)
        loss = float(aggregated.get("loss_sum", 0.0)) / max(float(aggregated.get("examples", 0.0)), 1.0)
        if not len(labels):
            return {"loss": loss, "accuracy": 0.0, "macro_f1": 0.0, "report_text": "(no examples)"}
        report, text = classification_report(labels, preds, class_names=self.class_names, num_classes=self.num_classes)
        return {"loss": loss, "accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "report_text": text}

    def predict_step(self, features, model):
        outputs = model(features, training=False)
        return {"logits": outputs["logits"], "predictions": tf.argmax(outputs["logits"], -1, output_type=tf.int32)}
