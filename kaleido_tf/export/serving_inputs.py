"""The inputs of the exported signatures: names, dtypes and widths from the model config, and their checks.

Every signature takes the flat fields of the TSV input schema, batch first:

    input_ids, input_mask, segment_ids       int64   [B, T]
    img_feature_convert_<level>              float32 [B, n * F]   (level: rotation, jigsaw, camouflage,
    img_loc_position_<level>                 float32 [B, n * 5]    grey_mask, blank_mask; n = 1, 4, 9, 16, 25)
    image_mask                               int64   [B, N]       (only for models built with use_image_mask)

The widths are dynamic in the SavedModel (a client sees [-1, -1]) and checked inside the graph, so a request
with a wrong width fails with a message naming the input, the expected and the found width instead of a
reshape error deep inside the encoder, e.g.

    assertion failed: [input img_feature_convert_jigsaw: expected width 8192 (4 patches x 2048 features),
    found] [100]

(Names are not quoted: TensorFlow escapes quotes when it prints the message.)
"""

import dataclasses

import tensorflow as tf

from kaleido_tf.utils.kaleido_levels import FEATURE_KEY, POSITION_KEY, POSITION_SIZE

TEXT_FIELDS = ("input_ids", "input_mask", "segment_ids")


@dataclasses.dataclass(frozen=True)
class InputField:
    """One signature input: a rank-2 tensor [B, width]."""

    name: str
    dtype: str  # "int64" or "float32"
    width: int
    description: str  # what the width is made of, for error messages and the export metadata

    def spec(self):
        return tf.TensorSpec([None, None], tf.as_dtype(self.dtype), name=self.name)

    def to_dict(self):
        return {"dtype": self.dtype, "shape": [-1, self.width], "description": self.description}


def text_fields(text_length):
    """input_ids, input_mask, segment_ids of width `text_length`."""
    return [InputField(name, "int64", text_length, f"{text_length} text positions") for name in TEXT_FIELDS]


def patch_fields(config, use_image_mask=False):
    """Patch features and positions of the five kaleido levels (+ image_mask when the model reads it)."""
    fields = []
    feature_size = config.patch_feature_size
    for _, suffix, n in config.level_lengths():
        fields.append(
            InputField(
                FEATURE_KEY.format(suffix), "float32", n * feature_size, f"{n} patches x {feature_size} features"
            )
        )
        fields.append(
            InputField(
                POSITION_KEY.format(suffix),
                "float32",
                n * POSITION_SIZE,
                f"{n} patches x {POSITION_SIZE} position numbers",
            )
        )
    if use_image_mask:
        fields.append(InputField("image_mask", "int64", config.num_patches, f"{config.num_patches} patches"))
    return fields


def check_inputs(features, fields, vocab_size=None, batch_size=None, batch_source=None):
    """Asserts inside the graph that every input is [B, width] with one B; returns the checked features.

    features: {name: tensor} holding every field. With `vocab_size`, `input_ids` must lie in [0, vocab_size)
    (a GPU gather would otherwise return zeros for an id out of range instead of failing).
    batch_size, batch_source: the batch size every input must have and the input it comes from (default:
    the first field's).
    Returns the features behind a control dependency on all checks, so no computation starts before
    they pass.
    """
    checks = []
    if batch_size is None:
        batch_source = fields[0].name
        batch_size = tf.shape(features[batch_source], out_type=tf.int64)[0]
    batch_size = tf.cast(batch_size, tf.int64)
    first = batch_source
    for field in fields:
        value = features[field.name]
        shape = tf.shape(value, out_type=tf.int64)  # [2]
        checks.append(
            tf.raw_ops.Assert(
                condition=tf.equal(shape[1], field.width),
                data=[f"input {field.name}: expected width {field.width} ({field.description}), found", shape[1]],
                name=f"check_{field.name}_width",
            )
        )
        checks.append(
            tf.raw_ops.Assert(
                condition=tf.equal(shape[0], batch_size),
                data=[
                    f"input {field.name}: batch size",
                    shape[0],
                    f"differs from the batch size of {first}",
                    batch_size,
                ],
                name=f"check_{field.name}_batch",
            )
        )
    if vocab_size is not None and "input_ids" in features:
        ids = features["input_ids"]
        in_range = tf.reduce_all(tf.logical_and(ids >= 0, ids < vocab_size))
        checks.append(
            tf.raw_ops.Assert(
                condition=in_range,
                data=[
                    f"input input_ids: ids must lie in [0, {vocab_size}), found min",
                    tf.reduce_min(ids),
                    "max",
                    tf.reduce_max(ids),
                ],
                name="check_input_ids_range",
            )
        )
    with tf.control_dependencies(checks):
        return {name: tf.identity(value) for name, value in features.items()}
