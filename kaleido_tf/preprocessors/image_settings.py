"""`ImageSettings`: the settings that decide a photo's patch features, one set for preprocessing and export.

A preprocessing run (`PreprocessConfig`) and the in-graph image path of an export (`ImagePathSettings`) hold
these fields under the same names, the `kaleido-preprocess` flags, with the same defaults, so an export
computes the features exactly as the model's training data was computed.
"""

import dataclasses

from kaleido_tf.preprocessors.feature_extractor import build_feature_extractor
from kaleido_tf.preprocessors.foreground import ForegroundDetector


@dataclasses.dataclass(kw_only=True)
class ImageSettings:
    """The image and feature settings; see docs/preprocessing.md for their meaning."""

    # images and patches
    foreground: str = "saliency"
    foreground_threshold: float = 30.0
    foreground_min_fraction: float = 0.2
    min_image_size: int = 32
    max_image_size: int = 2048
    crop_size: int = 224
    # features
    feature_extractor: str = "resnet50"
    resnet_weights: object = None
    feature_model: object = None
    feature_seed: int = 0
    patch_feature_size: int = 2048
    feature_dtype: str = "float16"

    def foreground_detector(self):
        """The ForegroundDetector of these settings."""
        return ForegroundDetector(
            self.foreground, threshold=self.foreground_threshold, min_fraction=self.foreground_min_fraction
        )

    def build_extractor(self, **kwargs):
        """The patch feature extractor of these settings (`kwargs`: build_feature_extractor's others)."""
        return build_feature_extractor(
            self.feature_extractor,
            crop_size=self.crop_size,
            feature_size=self.patch_feature_size,
            resnet_weights=self.resnet_weights,
            seed=self.feature_seed,
            feature_model=self.feature_model,
            **kwargs,
        )
