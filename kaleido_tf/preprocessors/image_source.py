"""Images for the preprocessing passes: loading (with a memory of recent failures), cutting into the
kaleido patches, and the patch feature extractor, built on first use."""

import collections

from kaleido_tf.preprocessors.graph_extractor import GraphCropExtractor
from kaleido_tf.preprocessors.image_loader import ImageLoader, ImageRejected
from kaleido_tf.preprocessors.kaleido_patches import KaleidoPatchGenerator

_BAD_IMAGES_KEPT = 4096


class ImageSource:
    """Args:
    config: a validated PreprocessConfig.
    feature_extractor: optional ready extractor (tests share one); built from the config on first use.
    """

    def __init__(self, config, feature_extractor=None):
        c = config
        self.config = config
        self.loader = ImageLoader(min_size=c.min_image_size, max_size=c.max_image_size)
        self.patcher = KaleidoPatchGenerator(
            crop_size=c.crop_size,
            foreground=c.foreground_detector(),
        )
        if feature_extractor is not None:
            if (feature_extractor.crop_size, feature_extractor.feature_size) != (c.crop_size, c.patch_feature_size):
                raise ValueError("the given feature extractor's crop_size/feature_size differ from the config")
        self._extractor = feature_extractor
        self._bad_images = collections.OrderedDict()

    @property
    def extractor(self):
        if self._extractor is None:
            c = self.config
            self._extractor = c.build_extractor(batch_size=c.batch_size)
            if c.image_path == "graph":  # the crops' features in TF ops, many images per call
                self._extractor = GraphCropExtractor(self._extractor, c.batch_size, c.mixed_bfloat16)
        return self._extractor

    @property
    def extractor_built(self):
        """The extractor when one was given or built, else None."""
        return self._extractor

    def load(self, path):
        """(LoadedImage, None) or (None, reason); remembers recent failures."""
        if path in self._bad_images:
            return None, self._bad_images[path]
        try:
            return self.loader.load(path), None
        except ImageRejected as e:
            self._bad_images[path] = e.reason
            if len(self._bad_images) > _BAD_IMAGES_KEPT:
                self._bad_images.popitem(last=False)
            return None, e.reason

    def patches(self, image):
        """The KaleidoPatches of a loaded PIL image."""
        return self.patcher(image)
