"""Input schemas: which fields one example holds, their types and lengths.

A schema string is what the `--input_schema` flag takes: comma-separated `name:type:length` items, in
the order of the columns of the TSV data files, e.g. `input_ids:int:64,masked_lm_weights:float:10`.
Types are `int` (int64), `float` (float32) and `str` (one string). `base64` is read as an alias of
`float` (a float field may hold comma-separated numbers or base64 of raw float32 either way).

    schema = get_schema("pretrain")                   # a named preset
    schema = get_schema("input_ids:int:64,...")       # a schema string, checked against the base lengths
    schema["input_ids"].length                        # 64
"""

import dataclasses
import re

from kaleido_tf.utils.kaleido_levels import (
    FEATURE_KEY,
    LEVEL_SIZES,
    LEVEL_SUFFIXES,
    NUM_PATCHES,
    POSITION_KEY,
    POSITION_PREFIX,
    POSITION_SIZE,
)

# Float fields longer than this hold patch features (2048 numbers per patch); the TFRecord format stores
# them as raw bytes (float16 by default) instead of a float_list.
FEATURE_MIN_LENGTH = 65

DTYPES = ("int", "float", "str")
_TYPE_ALIASES = {"base64": "float"}
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """One field of an example: `name`, `dtype` ("int", "float" or "str") and `length` (values per example).

    A `str` field holds exactly one string.
    """

    name: str
    dtype: str
    length: int

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ValueError(f"field name {self.name!r} is not a valid name (letters, digits, '_', '.', '-')")
        if self.dtype not in DTYPES:
            raise ValueError(f"field {self.name!r}: unknown type {self.dtype!r}; expected one of {', '.join(DTYPES)}")
        if isinstance(self.length, bool) or not isinstance(self.length, int) or self.length < 1:
            raise ValueError(f"field {self.name!r}: length must be a positive integer, got {self.length!r}")
        if self.dtype == "str" and self.length != 1:
            raise ValueError(
                f"field {self.name!r}: a str field holds one string, so its length must be 1, got {self.length}"
            )

    @property
    def is_feature(self):
        """True for patch-feature fields: float fields of at least FEATURE_MIN_LENGTH values, except patch
        positions (`img_loc_position_*`, kept exact). TFRecord shards store them as raw bytes."""
        return self.dtype == "float" and self.length >= FEATURE_MIN_LENGTH and not self.name.startswith(POSITION_PREFIX)

    def to_string(self):
        return f"{self.name}:{self.dtype}:{self.length}"


@dataclasses.dataclass(frozen=True)
class Schema:
    """An ordered tuple of `FieldSpec`s with unique names; the column order of the TSV files."""

    fields: tuple

    def __post_init__(self):
        fields = tuple(self.fields)
        object.__setattr__(self, "fields", fields)
        if not fields:
            raise ValueError("a schema needs at least one field")
        seen = set()
        for spec in fields:
            if not isinstance(spec, FieldSpec):
                raise TypeError(f"schema fields must be FieldSpec objects, got {type(spec).__name__}")
            if spec.name in seen:
                raise ValueError(f"duplicate field name {spec.name!r} in schema")
            seen.add(spec.name)
        object.__setattr__(self, "_by_name", {spec.name: spec for spec in fields})

    @classmethod
    def parse(cls, text):
        """Parses a schema string "name:type:length,..." (the `--input_schema` syntax), keeping the order."""
        if not isinstance(text, str):
            raise TypeError(f"a schema string is expected, got {type(text).__name__}")
        if not text.strip():
            raise ValueError("the input schema is empty; expected comma-separated name:type:length items")
        fields = []
        for index, item in enumerate(text.split(","), start=1):
            item = item.strip()
            if not item:
                raise ValueError(f"input schema item {index} is empty (a stray comma?) in {text!r}")
            parts = [part.strip() for part in item.split(":")]
            if len(parts) != 3:
                raise ValueError(f"input schema item {index} {item!r}: expected name:type:length")
            name, dtype, length_text = parts
            dtype = _TYPE_ALIASES.get(dtype, dtype)
            if dtype not in DTYPES:
                raise ValueError(
                    f"input schema item {index} {item!r}: unknown type {parts[1]!r} for field "
                    f"{name!r}; expected int, float or str"
                )
            # (at most 18 significant digits: python refuses int() of over 4300 digits)
            if not re.fullmatch(r"[0-9]+", length_text) or len(length_text.lstrip("0")) > 18 or int(length_text) < 1:
                raise ValueError(
                    f"input schema item {index} {item!r}: length {length_text!r} of field {name!r} "
                    f"is not a positive integer"
                )
            try:
                fields.append(FieldSpec(name, dtype, int(length_text)))
            except ValueError as error:
                raise ValueError(f"input schema item {index} {item!r}: {error}") from None
        return cls(tuple(fields))

    @property
    def names(self):
        return tuple(spec.name for spec in self.fields)

    def __getitem__(self, key):
        if isinstance(key, int):
            return self.fields[key]
        try:
            return self._by_name[key]
        except KeyError:
            raise KeyError(f"no field {key!r} in schema; fields: {', '.join(self.names)}") from None

    def __contains__(self, name):
        return name in self._by_name

    def __iter__(self):
        return iter(self.fields)

    def __len__(self):
        return len(self.fields)

    def to_string(self):
        """The `--input_schema` string for this schema (parses back to an equal schema)."""
        return ",".join(spec.to_string() for spec in self.fields)

    def select(self, names):
        """The sub-schema with the given field names, in this schema's order."""
        names = list(names)
        missing = [name for name in names if name not in self._by_name]
        if missing:
            raise KeyError(f"fields {missing} are not in the schema; fields: {', '.join(self.names)}")
        wanted = set(names)
        return Schema(tuple(spec for spec in self.fields if spec.name in wanted))

    def check_lengths(self, expected):
        """Raises ValueError naming the field when a length disagrees with `expected` (name -> length).

        Fields missing from `expected` are not checked.
        """
        for spec in self.fields:
            want = expected.get(spec.name)
            if want is not None and spec.length != want:
                hint = _LENGTH_HINTS.get(spec.name, "")
                raise ValueError(
                    f"field {spec.name!r} has length {spec.length} in the input schema, but the model "
                    f"expects {want}{hint}. Fix the schema (or pass expected_lengths=None to skip "
                    f"this check for a non-standard configuration)."
                )


# ----------------------------------------------------------------------------------------------------------
# Presets, field for field as the original pretraining, classification and retrieval scripts declare them,
# with one correction: img_loc_position_camouflage holds 9 patches x 5 numbers = 45 (the scripts say 35).

_LEVELS = tuple(zip(LEVEL_SUFFIXES, LEVEL_SIZES))  # (schema suffix, patches) per kaleido level


def known_field_lengths(
    text_seq_len=64,
    max_predictions_per_seq=10,
    patch_feature_size=2048,
    masked_greymask_patch_num=2,
    masked_blankmask_patch_num=3,
):
    """Expected length of every known field for a configuration (defaults: the base model)."""
    lengths = {
        "input_ids": text_seq_len,
        "input_mask": text_seq_len,
        "segment_ids": text_seq_len,
        "masked_lm_positions": max_predictions_per_seq,
        "masked_lm_ids": max_predictions_per_seq,
        "masked_lm_weights": max_predictions_per_seq,
    }
    for level, patches in _LEVELS:
        lengths[FEATURE_KEY.format(level)] = patches * patch_feature_size
    lengths["image_mask"] = NUM_PATCHES
    for level, patches in _LEVELS:
        lengths[POSITION_KEY.format(level)] = patches * POSITION_SIZE
    lengths.update(
        {
            "img_subtasks_flag": 1,
            "img_grey_lm_ids": masked_greymask_patch_num,
            "img_blank_lm_ids": masked_blankmask_patch_num,
            "img_rotate_gt": 1,
            "img_jigsaw_gt": 1,
            "img_camouflage_gt": 1,
            "img_grey_mask_gt": masked_greymask_patch_num * patch_feature_size,
            "nx_sent_labels": 1,
            "text_prod_id": 1,
            "prod_desc": 1,
            "image_prod_id": 1,
            "prod_img_id": 1,
            "img_category": 1,
            "img_category_id": 1,
            "img_subcategory": 1,
            "img_subcategory_id": 1,
        }
    )
    return lengths


KNOWN_FIELD_LENGTHS = known_field_lengths()

_LENGTH_HINTS = {
    POSITION_KEY.format(level): f" ({patches} patches x {POSITION_SIZE} position numbers)" for level, patches in _LEVELS
}
_LENGTH_HINTS[POSITION_KEY.format("camouflage")] += " (the released run scripts declare 35, which is too short)"
_LENGTH_HINTS.update(
    {FEATURE_KEY.format(level): f" ({patches} patches x the patch feature size)" for level, patches in _LEVELS}
)


def _fields(*items):
    types = {}
    for name in ("text_prod_id", "prod_desc", "image_prod_id", "prod_img_id", "img_category", "img_subcategory"):
        types[name] = "str"
    for name in ("masked_lm_weights", "img_grey_mask_gt") + tuple(FEATURE_KEY.format(lv) for lv in LEVEL_SUFFIXES):
        types[name] = "float"
    return tuple(FieldSpec(name, types.get(name, "int"), KNOWN_FIELD_LENGTHS[name]) for name in items)


_TEXT = ("input_ids", "input_mask", "segment_ids")
_IMAGE = (
    tuple(FEATURE_KEY.format(level) for level in LEVEL_SUFFIXES)
    + ("image_mask",)
    + tuple(POSITION_KEY.format(level) for level in LEVEL_SUFFIXES)
)

SCHEMA_PRESETS = {
    "pretrain": Schema(
        _fields(
            *_TEXT,
            "masked_lm_positions",
            "masked_lm_ids",
            "masked_lm_weights",
            *_IMAGE,
            "img_subtasks_flag",
            "img_grey_lm_ids",
            "img_blank_lm_ids",
            "img_rotate_gt",
            "img_jigsaw_gt",
            "img_camouflage_gt",
            "img_grey_mask_gt",
            "nx_sent_labels",
        )
    ),
    "finetune": Schema(
        _fields(
            "text_prod_id",
            *_TEXT,
            "prod_desc",
            "image_prod_id",
            "prod_img_id",
            *_IMAGE,
            "img_category",
            "img_category_id",
            "img_subcategory",
            "img_subcategory_id",
        )
    ),
    "retrieval": Schema(
        _fields("text_prod_id", *_TEXT, "prod_desc", "nx_sent_labels", "image_prod_id", "prod_img_id", *_IMAGE)
    ),
}


def get_schema(name_or_string, expected_lengths=KNOWN_FIELD_LENGTHS):
    """Returns a `Schema` for a preset name ("pretrain", "finetune", "retrieval"), a schema string or a Schema.

    Lengths are checked against `expected_lengths` (default: the base model, text length 64); pass
    `known_field_lengths(text_seq_len=...)` for another configuration, or None to skip the check.
    """
    if isinstance(name_or_string, Schema):
        schema = name_or_string
    elif not isinstance(name_or_string, str):
        raise TypeError(f"expected a preset name, a schema string or a Schema, got {type(name_or_string).__name__}")
    elif name_or_string.strip() in SCHEMA_PRESETS:
        schema = SCHEMA_PRESETS[name_or_string.strip()]
    elif ":" not in name_or_string:
        raise ValueError(
            f"unknown schema preset {name_or_string!r}; presets: {', '.join(SCHEMA_PRESETS)} "
            f"(or give a name:type:length,... string)"
        )
    else:
        schema = Schema.parse(name_or_string)
    if expected_lengths is not None:
        schema.check_lengths(expected_lengths)
    return schema
