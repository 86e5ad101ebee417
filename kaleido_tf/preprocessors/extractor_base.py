"""The interface of patch feature extractors: square RGB crops [N, S, S, 3] (uint8) -> features [N, F] (float32).

The extractors themselves are in resnet_extractor, pixel_extractor and keras_extractor; feature_extractor
builds one by name.
"""

import numpy as np


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
