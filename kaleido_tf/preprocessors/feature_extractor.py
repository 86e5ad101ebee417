"""The factory behind `--feature_extractor` (the interface, PatchFeatureExtractor, is in extractor_base).

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

from kaleido_tf.preprocessors.extractor_base import PatchFeatureExtractor
from kaleido_tf.preprocessors.keras_extractor import KerasModelPatchExtractor
from kaleido_tf.preprocessors.pixel_extractor import PixelStatsPatchExtractor
from kaleido_tf.preprocessors.resnet_extractor import ResNet50PatchExtractor

__all__ = ["EXTRACTOR_NAMES", "PatchFeatureExtractor", "build_feature_extractor"]

EXTRACTOR_NAMES = ("resnet50", "pixels", "keras")


def build_feature_extractor(
    name, crop_size=224, feature_size=2048, resnet_weights=None, seed=0, batch_size=64, feature_model=None
):
    """Creates the extractor called `name` ("resnet50", "pixels" or "keras")."""
    if feature_model and name != "keras":
        raise ValueError(f"--feature_model is given but --feature_extractor is {name!r}")
    if name == "keras":
        if resnet_weights:
            raise ValueError("--resnet_weights is given but --feature_extractor is 'keras'")
        return KerasModelPatchExtractor(
            feature_model, crop_size=crop_size, feature_size=feature_size, batch_size=max(batch_size, 1)
        )
    if name == "resnet50":
        return ResNet50PatchExtractor(
            crop_size=crop_size,
            feature_size=feature_size,
            weights_path=resnet_weights,
            seed=seed,
            batch_size=batch_size,
        )
    if name == "pixels":
        if resnet_weights:
            raise ValueError("--resnet_weights is given but --feature_extractor is 'pixels'")
        return PixelStatsPatchExtractor(crop_size=crop_size, feature_size=feature_size, seed=seed)
    raise ValueError(f"feature extractor must be one of {EXTRACTOR_NAMES}, got {name!r}")
