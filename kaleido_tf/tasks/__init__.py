"""Tasks: what to build, which losses and metrics, and one training step (the trainer stays thin)."""

from kaleido_tf.tasks.pretrain_task import PretrainTask

__all__ = ["PretrainTask"]
