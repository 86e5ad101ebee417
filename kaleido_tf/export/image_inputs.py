"""The image half of the raw-input signatures: JPEG/PNG bytes [B] -> the flat patch fields a model takes.

`ImagePathSettings` holds the preprocessing settings that decide the patch features (extractor, crop and
feature size, seed or weights, foreground box, image size limits, stored feature dtype); read them from a
preprocessing output with `ImagePathSettings.from_preprocess_dir(D)` so the export computes the features
exactly as the model's training data was computed. `RawImageFeatures` runs the in-graph image path
(preprocessors/graph_extractor.py `GraphImagePath`) and cuts its 55 features and positions into the level
fields of `serving_inputs.patch_fields`:

    image_bytes [B] string -> img_feature_convert_<level> [B, n * F], img_loc_position_<level> [B, n * 5]
                              (+ image_mask [B, 55] of ones when the model reads it)

Bad bytes (0 bytes, not a JPEG/PNG, truncated, a header claiming more than `max_pixels` pixels, a shorter
side below `min_image_size`) fail with an InvalidArgumentError naming `image_bytes` (graph_image.py).
"""

import dataclasses
import json
import os
import types

import tensorflow as tf

from kaleido_tf.datasets.schema import FEATURE_MIN_LENGTH
from kaleido_tf.preprocessors.feature_extractor import EXTRACTOR_NAMES
from kaleido_tf.preprocessors.foreground import FOREGROUND_METHODS
from kaleido_tf.preprocessors.graph_extractor import GraphImagePath
from kaleido_tf.preprocessors.image_settings import ImageSettings
from kaleido_tf.utils.kaleido_levels import LEVEL_OFFSETS, LEVEL_SIZES, NUM_PATCHES, POSITION_SIZE

SUMMARY = "summary.json"


@dataclasses.dataclass(kw_only=True)
class ImagePathSettings(ImageSettings):
    """The preprocessing settings the in-graph image path needs: the ImageSettings of the preprocessing run
    (names as the `kaleido-preprocess` flags; keyword arguments), and the largest image it decodes.

    feature_dtype "float16" rounds the features of each level to float16 and back where the shards store that
    field as float16 (feature fields of at least FEATURE_MIN_LENGTH values, datasets/schema.py).
    """

    max_pixels: int = 200_000_000

    @classmethod
    def from_preprocess_dir(cls, directory, **overrides):
        """The settings recorded in `directory`/summary.json by kaleido-preprocess (`overrides` win).

        A relative resnet_weights / feature_model path that does not exist as given is looked up beside
        the preprocessing output's parent (where the preprocessing command usually ran).
        """
        path = os.path.join(os.fspath(directory), SUMMARY)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"--preprocess_dir {directory}: no {SUMMARY}; pass the output directory of kaleido-preprocess"
            )
        try:
            with open(path, encoding="utf-8") as f:
                settings = json.load(f)["settings"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: cannot read its settings ({e!r}); rerun kaleido-preprocess") from None
        names = {field.name for field in dataclasses.fields(cls)}
        values = {k: v for k, v in settings.items() if k in names}
        for key in ("resnet_weights", "feature_model"):
            file = values.get(key)
            if file and not os.path.isabs(file) and not os.path.exists(file):
                beside = os.path.join(os.path.dirname(os.path.abspath(directory)), file)
                if os.path.exists(beside):
                    values[key] = beside
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).checked(where=path)

    def checked(self, where="image_path"):
        """Self, after refusing settings the image path cannot follow (ValueError naming `where`)."""
        if self.feature_extractor not in EXTRACTOR_NAMES:
            raise ValueError(
                f"{where}: feature_extractor must be one of {EXTRACTOR_NAMES}, got {self.feature_extractor!r}"
            )
        if self.foreground not in FOREGROUND_METHODS:
            raise ValueError(f"{where}: foreground must be one of {FOREGROUND_METHODS}, got {self.foreground!r}")
        if self.feature_dtype not in ("float16", "float32"):
            raise ValueError(f"{where}: feature_dtype must be float16 or float32, got {self.feature_dtype!r}")
        if self.feature_extractor == "keras" and not self.feature_model:
            raise ValueError(f"{where}: the keras extractor needs feature_model (the saved .keras feature model)")
        for key in ("resnet_weights", "feature_model"):
            file = getattr(self, key)
            if file and not os.path.isfile(file):
                raise FileNotFoundError(f"{where}: {key} file not found: {file} (pass --{key} to say where it is)")
        return self

    def to_dict(self):
        out = dataclasses.asdict(self)
        for key in ("resnet_weights", "feature_model"):  # no machine paths in the export metadata
            if out[key]:
                out[key] = os.path.basename(os.fspath(out[key]))
        return out


def image_bytes_spec():
    return tf.TensorSpec([None], tf.string, name="image_bytes")


IMAGE_BYTES_FIELD = {
    "dtype": "string",
    "shape": [-1],
    "description": 'encoded JPEG or PNG image, one per example (REST: {"b64": ...})',
}


class RawImageFeatures(tf.Module):
    """image_bytes [B] -> {patch field name: tensor}, for the patch fields of one exported model.

    Args:
        settings: the ImagePathSettings the model's data was preprocessed with.
        fields: the model's `serving_inputs.patch_fields` (their names and widths are checked here).
        extractor: a ready extractor with these settings (default: built from them).
    """

    def __init__(self, settings, fields, extractor=None, name="raw_image_features"):
        super().__init__(name=name)
        self.settings = settings
        self.feature_size = int(settings.patch_feature_size)
        extractor = extractor if extractor is not None else settings.build_extractor()
        if (extractor.crop_size, extractor.feature_size) != (settings.crop_size, settings.patch_feature_size):
            raise ValueError("the given feature extractor's crop_size/feature_size differ from the image path settings")
        self.field_names = [field.name for field in fields]
        levels = [f for f in fields if f.name.startswith("img_feature_convert_")]
        expected = [n * self.feature_size for n in LEVEL_SIZES]
        if [f.width for f in levels] != expected:
            found = [f"{f.name} {f.width}" for f in levels]
            raise ValueError(
                f"the model's patch inputs ({', '.join(found)}) do not fit the image path: it makes "
                f"{'/'.join(map(str, LEVEL_SIZES))} patches of {self.feature_size} features (patch_feature_size of "
                "the preprocessing); export with the preprocessing settings the model was trained on"
            )
        # The keras feature model travels with the export (its weights are the captured variables).
        self.feature_model_asset = (
            tf.saved_model.Asset(os.fspath(settings.feature_model)) if settings.feature_model else None
        )
        # Out of the tracked attributes: the SavedModel would otherwise save the path's own tf.functions.
        self._path = types.MappingProxyType(
            {
                "path": GraphImagePath(
                    extractor,
                    foreground=settings.foreground_detector(),
                    min_size=settings.min_image_size,
                    max_size=settings.max_image_size,
                    max_pixels=settings.max_pixels,
                )
            }
        )

    @property
    def image_path(self):
        return self._path["path"]

    def patches(self, image_bytes):
        """image_bytes [B] -> features [B, 55, F], positions [B, 55, 5] (float32, as computed)."""
        out = self.image_path.run(image_bytes)
        return out["features"], out["positions"]

    def __call__(self, image_bytes):
        features, positions = self.patches(image_bytes)
        b = tf.shape(features)[0]
        fields = {}
        for name in self.field_names:
            if name == "image_mask":
                fields[name] = tf.ones([b, NUM_PATCHES], tf.int64)
        levels = [n for n in self.field_names if n.startswith("img_feature_convert_")]
        positions_names = [n for n in self.field_names if n.startswith("img_loc_position_")]
        for feature_name, position_name, start, size in zip(levels, positions_names, LEVEL_OFFSETS, LEVEL_SIZES):
            flat = tf.reshape(features[:, start : start + size], [b, size * self.feature_size])
            if self.settings.feature_dtype == "float16" and size * self.feature_size >= FEATURE_MIN_LENGTH:
                flat = tf.cast(tf.cast(flat, tf.float16), tf.float32)  # as the shards store this field
            fields[feature_name] = flat
            fields[position_name] = tf.reshape(positions[:, start : start + size], [b, size * POSITION_SIZE])
        return fields
