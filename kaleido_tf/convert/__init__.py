"""TF1 (EasyTransfer) checkpoints: reading, the name map, strict loading into a built model, the converted format.

Nothing here builds a model: `model_zoo.tf1_conversion` converts a checkpoint into a directory, `model_zoo.registry`
loads one into a model.
"""

from kaleido_tf.convert.tf1_converter import (
    CheckpointError,
    CheckpointMismatchError,
    LoadReport,
    load_checkpoint_into_model,
    read_checkpoint,
    tf1_to_keras_name,
)

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "LoadReport",
    "load_checkpoint_into_model",
    "read_checkpoint",
    "tf1_to_keras_name",
]
