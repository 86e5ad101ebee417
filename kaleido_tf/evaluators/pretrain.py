"""Pretraining accuracies: masked LM, image-text matching, rotation, jigsaw and camouflage.

Model outputs and features use the pretraining names:

| task       | output              | shape    | label feature                          | shape  |
|------------|---------------------|----------|----------------------------------------|--------|
| mlm        | `mlm_logits`        | [B*P, V] | `masked_lm_ids`, weights `masked_lm_weights` | [B, P] |
| itm        | `nsp_logits`        | [B, 2]   | `nx_sent_labels`                       | [B, 1] |
| rotation   | `rotation_logits`   | [B, C]   | `img_rotate_gt` (alias `img_rotation_gt`) | [B, 1] |
| jigsaw     | `jigsaw_logits`     | [B, C]   | `img_jigsaw_gt`                        | [B, 1] |
| camouflage | `camouflage_logits` | [B, C]   | `img_camouflage_gt`                    | [B, 1] |

Each accuracy is sum(weight * [argmax(logits) == label]) / sum(weight); the weight is
`masked_lm_weights` for MLM (padding positions weigh 0) and 1 elsewhere.
`pretrain_metric_values` gives the per-batch (correct, count) pairs; `PretrainMetrics` accumulates them
over batches as a Keras metric, inside `tf.function` and across the replicas of a `tf.distribute`
strategy (its variables are summed over replicas when read).
"""

import keras
import tensorflow as tf

from kaleido_tf.utils.pretrain_tasks import PRETRAIN_TASKS

# task -> (output name, accepted label feature names, weight feature name or None)
_TASK_SPECS = {
    "mlm": ("mlm_logits", ("masked_lm_ids",), "masked_lm_weights"),
    "itm": ("nsp_logits", ("nx_sent_labels",), None),
    "rotation": ("rotation_logits", ("img_rotate_gt", "img_rotation_gt"), None),
    "jigsaw": ("jigsaw_logits", ("img_jigsaw_gt",), None),
    "camouflage": ("camouflage_logits", ("img_camouflage_gt",), None),
}


def _check_tasks(tasks):
    tasks = tuple(tasks)
    unknown = [t for t in tasks if t not in _TASK_SPECS]
    if unknown:
        raise ValueError(f"unknown pretraining tasks {unknown}; known: {PRETRAIN_TASKS}")
    if len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks repeat: {tasks}")
    return tasks


def _lookup(mapping, names):
    for name in names:
        if name in mapping and mapping[name] is not None:
            return mapping[name]
    return None


def _task_counts(task, logits, labels, weights):
    """(correct, count) float32 scalars of one task's batch."""
    logits = tf.convert_to_tensor(logits)
    if logits.shape.rank is not None and logits.shape.rank < 2:
        raise ValueError(f"{_TASK_SPECS[task][0]} must have shape [N, C], got {logits.shape}")
    logits = tf.reshape(logits, [-1, tf.shape(logits)[-1]])  # [N, C]
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])  # [N]
    label_name = _TASK_SPECS[task][1][0]
    if logits.shape[0] is not None and labels.shape[0] is not None and logits.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{label_name} holds {labels.shape[0]} labels but {_TASK_SPECS[task][0]} has {logits.shape[0]} rows"
        )
    predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)  # [N]
    hits = tf.cast(tf.equal(predictions, labels), tf.float32)  # [N]
    if weights is None:
        weights = tf.ones_like(hits)
    else:
        weights = tf.reshape(tf.cast(weights, tf.float32), [-1])  # [N]
        if weights.shape[0] is not None and labels.shape[0] is not None and weights.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{_TASK_SPECS[task][2]} holds {weights.shape[0]} weights for {labels.shape[0]} {label_name}"
            )
    return tf.reduce_sum(hits * weights), tf.reduce_sum(weights)


def pretrain_metric_values(outputs, features, tasks=None):
    """Per-batch (correct, count) float32 scalars of each pretraining task.

    Args:
      outputs: dict of model outputs (`mlm_logits`, `nsp_logits`, ...).
      features: dict of input features holding the labels (and `masked_lm_weights`).
      tasks: tasks to compute; None computes every task whose output and label are present.
        A task named explicitly whose output or label is missing raises ValueError.

    Returns:
      dict task -> (correct, count); accuracy = correct / count.
    """
    explicit = tasks is not None
    return _metric_values(outputs, features, _check_tasks(PRETRAIN_TASKS if tasks is None else tasks), explicit)


def _metric_values(outputs, features, tasks, explicit):
    values = {}
    for task in tasks:
        output_name, label_names, weight_name = _TASK_SPECS[task]
        logits = outputs.get(output_name)
        labels = _lookup(features, label_names)
        if logits is None or labels is None:
            if explicit:
                missing = output_name if logits is None else " / ".join(label_names)
                raise ValueError(f"task {task!r} needs {missing!r}, which is missing")
            continue
        weights = None
        if weight_name is not None:
            weights = features.get(weight_name)
            if weights is None:
                raise ValueError(f"task {task!r} needs the feature {weight_name!r}, which is missing")
        values[task] = _task_counts(task, logits, labels, weights)
    return values


@keras.saving.register_keras_serializable(package="kaleido_tf")
class PretrainMetrics(keras.metrics.Metric):
    """Streaming accuracies of the pretraining tasks.

    `update_state(outputs, features)` adds one batch; `result()` returns a dict
    ``{"<task>_accuracy": correct / count}`` (0 for a task not seen yet). Tasks absent from a batch
    (no output or no label) are left unchanged. Create it inside `strategy.scope()` to use it under
    a distribution strategy; `update_state` may run in a replica context.
    """

    def __init__(self, tasks=PRETRAIN_TASKS, name="pretrain_metrics", dtype="float32", **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.tasks = _check_tasks(tasks)
        self._correct = []
        self._count = []
        for task in self.tasks:
            self._correct.append(
                self.add_variable(
                    shape=(), initializer="zeros", dtype=self.dtype, aggregation="sum", name=f"{task}_correct"
                )
            )
            self._count.append(
                self.add_variable(
                    shape=(), initializer="zeros", dtype=self.dtype, aggregation="sum", name=f"{task}_count"
                )
            )

    def update_state(self, outputs, features, sample_weight=None):
        """Adds one batch. `sample_weight` is not supported (the MLM weights come from features)."""
        if sample_weight is not None:
            raise ValueError("PretrainMetrics takes its weights from `features`; pass sample_weight=None")
        values = _metric_values(outputs, features, self.tasks, explicit=False)
        for i, task in enumerate(self.tasks):
            if task in values:
                correct, count = values[task]
                self._correct[i].assign_add(tf.cast(correct, self.dtype))
                self._count[i].assign_add(tf.cast(count, self.dtype))

    def result(self):
        return {
            f"{task}_accuracy": tf.math.divide_no_nan(
                tf.convert_to_tensor(self._correct[i]), tf.convert_to_tensor(self._count[i])
            )
            for i, task in enumerate(self.tasks)
        }

    def counts(self):
        """dict task -> (correct, count) accumulated so far."""
        return {
            task: (tf.convert_to_tensor(self._correct[i]), tf.convert_to_tensor(self._count[i]))
            for i, task in enumerate(self.tasks)
        }

    def reset_state(self):
        for variable in self._correct + self._count:
            variable.assign(tf.zeros_like(variable))

    def get_config(self):
        config = super().get_config()
        config.update({"tasks": list(self.tasks)})
        return config
