"""A patch feature extractor from any saved Keras model (`--feature_extractor keras --feature_model M.keras`).

The model takes crops [N, S, S, 3] as float32 in [0, 1] and returns features [N, F]: for example a small CNN
trained on a catalog's own product crops, ending in a `keras.layers.Normalization` adapted on them so that
every feature dimension has zero mean and unit variance (docs/demo.md shows why that matters for ITM).
"""

import os

import numpy as np

from kaleido_tf.preprocessors.extractor_base import PatchFeatureExtractor


class KerasModelPatchExtractor(PatchFeatureExtractor):
    """Runs a saved Keras model over the crops, `batch_size` at a time."""

    name = "keras"

    def __init__(self, model_path, crop_size, feature_size, batch_size=256):
        super().__init__(crop_size, feature_size)
        # local import: TensorFlow loads only when this extractor is built (the pixels one stays light)
        import keras  # noqa: PLC0415

        if not model_path:
            raise ValueError("--feature_extractor keras needs --feature_model (a saved .keras model)")
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"--feature_model file not found: {model_path}")
        try:
            self.model = keras.saving.load_model(model_path, compile=False)
        except Exception as e:
            raise ValueError(f"--feature_model {model_path}: cannot load it as a Keras model: {e}") from e
        expected_in, expected_out = (None, crop_size, crop_size, 3), (None, feature_size)
        found_in, found_out = tuple(self.model.input_shape), tuple(self.model.output_shape)
        if found_in[1:] != expected_in[1:]:
            raise ValueError(
                f"--feature_model {model_path}: input shape {list(found_in)}, expected "
                f"{list(expected_in)} (--crop_size {crop_size})"
            )
        if found_out[1:] != expected_out[1:]:
            raise ValueError(
                f"--feature_model {model_path}: output shape {list(found_out)}, expected "
                f"{list(expected_out)} (--patch_feature_size {feature_size})"
            )
        self.model_path = model_path
        self.batch_size = int(batch_size)

    def _extract(self, crops):
        x = crops.astype(np.float32) / 255.0  # [N, S, S, 3] in [0, 1]
        return np.concatenate(
            [
                np.asarray(self.model(x[i : i + self.batch_size], training=False))
                for i in range(0, len(x), self.batch_size)
            ]
        )

    def describe(self):
        info = super().describe()
        info["model"] = os.path.basename(self.model_path)
        return info
