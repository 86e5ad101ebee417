"""One interface for patch feature extractors, and the factory behind `--feature_extractor`.

An extractor maps a batch of square RGB crops [N, S, S, 3] (uint8) to features [N, F] (float32).
Three are provided:

- "resnet50": Keras ResNet-50 without its top, global average pooled (2048-d), fed through a
  batched tf.data pipeline. Weights come from a file (`--resnet_weights`, e.g. the ImageNet
  "notop" weights saved beforehand); without one, a seeded random initialisation is used, which
  gives consistent but not semantically meaningful features (fine for plumbing and tests).
- "pixels": a cheap extractor for demos and tests: colour statistics, a colour histogram and
  downsampled pixels, mapped to `feature_size` by a fixed seeded random projection.
- "keras": any saved Keras model (`--feature_model`) taking crops as float32 in [0, 1].
"""

EXTRACTOR_NAMES = ("resnet50", "pixels", "keras")


class PatchFeatureExtractor:
    """Base class. Subclasses set `name`, `crop_size`, `feature_size` and implement `_extract`."""

    name = "base"

    def __init__(self, crop_size, feature_size):
        if crop_size < 8:
            raise ValueError(f"crop_size must be >= 8, got {crop_size}")
        if feature_size < 1:
            raise ValueError(f"feature_size must be >= 1, got {feature_size}")
        self.crop_size = int(crop_size)
        self.feature_size = int(feature_size)

    def __call__(self, crops):
        """crops: uint8 [N, S, S, 3] with S == crop_size. Returns float32 [N, F]."""
        import numpy as np

        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (self.crop_size, self.crop_size, 3):
            raise ValueError(
                f"{self.name} extractor expects crops of shape [N, {self.crop_size}, "
                f"{self.crop_size}, 3], got {list(crops.shape)}"
            )
        if crops.dtype != np.uint8:
            raise ValueError(f"{self.name} extractor expects uint8 crops, got {crops.dtype}")
        if len(crops) == 0:
            return np.zeros((0, self.feature_size), np.float32)
        features = np.asarray(self._extract(crops), dtype=np.float32)
        if features.shape != (len(crops), self.feature_size):
            raise AssertionError(f"{self.name} returned shape {features.shape}")
        return features

    def _extract(self, crops):
        raise NotImplementedError

    def describe(self):
        """A JSON-able description for the summary."""
        return {"name": self.name, "crop_size": self.crop_size, "feature_size": self.feature_size}


def build_feature_extractor(
    name, crop_size=224, feature_size=2048, resnet_weights=None, seed=0, batch_size=64, feature_model=None
):
    """Creates the extractor called `name` ("resnet50", "pixels" or "keras")."""
    if feature_model and name != "keras":
        raise ValueError(f"--feature_model is given but --feature_extractor is {name!r}")
    if name == "keras":
        from kaleido_tf.preprocessors.keras_extractor import KerasModelPatchExtractor

        if resnet_weights:
            raise ValueError("--resnet_weights is given but --feature_extractor is 'keras'")
        return KerasModelPatchExtractor(
            feature_model, crop_size=crop_size, feature_size=feature_size, batch_size=max(batch_size, 1)
        )
    if name == "resnet50":
        from kaleido_tf.preprocessors.resnet_extractor import ResNet50PatchExtractor

        return ResNet50PatchExtractor(
            crop_size=crop_size,
            feature_size=feature_size,
            weights_path=resnet_weights,
            seed=seed,
            batch_size=batch_size,
        )
    if name == "pixels":
        from kaleido_tf.preprocessors.pixel_extractor import PixelStatsPatchExtractor

        if resnet_weights:
            raise ValueError("--resnet_weights is given but --feature_extractor is 'pixels'")
        return PixelStatsPatchExtractor(crop_size=crop_size, feature_size=feature_size, seed=seed)
    raise ValueError(f"feature extractor must be one of {EXTRACTOR_NAMES}, got {name!r}")
