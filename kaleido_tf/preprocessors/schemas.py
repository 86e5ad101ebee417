"""Schemas of the shards written by preprocessing.

They are the data layer's presets ("pretrain", "finetune", "retrieval") field for field and in the
same order, with two differences: the lengths follow the preprocessing settings (text length, patch
feature size, masked LM predictions, masked grey/blank patches), and the five `img_loc_position_*`
fields are float (the positions are fractions of the foreground box; the released scripts declare
them int). `img_loc_position_camouflage` holds 9 x 5 = 45 numbers.
"""

from kaleido_tf.datasets.schema import FieldSpec, Schema, get_schema, known_field_lengths
from kaleido_tf.utils.kaleido_levels import POSITION_KEYS

TASK_SCHEMAS = ("pretrain", "finetune", "retrieval")
POSITION_FIELDS = POSITION_KEYS


def preprocess_schema(task, text_length=64, feature_size=2048, max_predictions=10, num_grey=2, num_blank=3):
    """The Schema of `task` ("pretrain", "finetune" or "retrieval") for these settings."""
    if task not in TASK_SCHEMAS:
        raise ValueError(f"task must be one of {TASK_SCHEMAS}, got {task!r}")
    preset = get_schema(task)
    lengths = known_field_lengths(
        text_seq_len=text_length,
        max_predictions_per_seq=max_predictions,
        patch_feature_size=feature_size,
        masked_greymask_patch_num=num_grey,
        masked_blankmask_patch_num=num_blank,
    )
    fields = []
    for spec in preset.fields:
        dtype = "float" if spec.name in POSITION_FIELDS else spec.dtype
        fields.append(FieldSpec(spec.name, dtype, lengths[spec.name]))
    return Schema(tuple(fields))
