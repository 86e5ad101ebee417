"""TF1 (EasyTransfer) checkpoint conversion."""

from kaleido_tf.convert.tf1_converter import (
    CheckpointError,
    CheckpointMismatchError,
    LoadReport,
    convert_tf1_checkpoint,
    load_checkpoint_into_model,
    read_checkpoint,
    tf1_to_keras_name,
)

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "LoadReport",
    "convert_tf1_checkpoint",
    "load_checkpoint_into_model",
    "read_checkpoint",
    "tf1_to_keras_name",
]
