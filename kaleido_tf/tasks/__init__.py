"""Tasks: what to build, which losses and metrics, and one training step (the trainer stays thin)."""

from kaleido_tf.tasks.base_task import Task, aggregate
from kaleido_tf.tasks.caption_task import CaptionTask
from kaleido_tf.tasks.classification_task import ClassificationTask
from kaleido_tf.tasks.pretrain_task import PretrainTask

__all__ = ["CaptionTask", "ClassificationTask", "PretrainTask", "Task", "aggregate"]
