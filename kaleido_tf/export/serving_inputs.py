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
    """Asserts inside the graph that every input is [B, width] with one B and float inputs are finite;
    returns the checked features.

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
        if field.dtype == "float32":  # NaN features would give NaN probabilities, an argmax of class 0
            checks.append(
                tf.raw_ops.Assert(
                    condition=tf.reduce_all(tf.math.is_finite(value)),
                    data=[f"input {field.name}: non-finite values (NaN or Inf); send finite features"],
                    name=f"check_{field.name}_finite",
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


def check_text(text, name="text"):
    """Asserts that every string of `text` [B] is valid UTF-8 and not empty (nor only spaces); returns it.

    Used by the raw-input signatures: an empty query would match everything equally, and bytes that are not
    UTF-8 would be tokenised into [UNK]s, both a silently meaningless answer.
    """
    text = tf.convert_to_tensor(text, tf.string)
    decoded = tf.strings.unicode_decode(text, "UTF-8", errors="ignore")  # ragged [B, (chars)]
    valid = tf.equal(tf.strings.unicode_encode(decoded, "UTF-8"), text)  # [B]: invalid bytes were dropped
    bad = tf.cast(tf.where(tf.logical_not(valid))[:, 0], tf.int32)
    empty = tf.cast(tf.where(tf.equal(tf.strings.length(tf.strings.strip(text)), 0))[:, 0], tf.int32)
    checks = [
        tf.raw_ops.Assert(
            condition=tf.equal(tf.size(bad), 0),
            data=[f"input {name}: not valid UTF-8 at rows", bad],
            name=f"check_{name}_utf8",
        ),
        tf.raw_ops.Assert(
            condition=tf.equal(tf.size(empty), 0),
            data=[f"input {name}: empty text at rows", empty],
            name=f"check_{name}_empty",
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(text)
