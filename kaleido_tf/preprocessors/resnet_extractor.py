"""Patch features from Keras ResNet-50 (no top, global average pooling, 2048-d)."""

import os
import random

import numpy as np

from kaleido_tf.preprocessors.extractor_base import PatchFeatureExtractor

RESNET_FEATURE_SIZE = 2048
# Keras "caffe" preprocessing of ResNet-50: RGB -> BGR, minus the ImageNet mean per channel.
BGR_MEAN = (103.939, 116.779, 123.68)


class ResNet50PatchExtractor(PatchFeatureExtractor):
    """ResNet-50 features, batched through tf.data.

    Args:
      crop_size: input side of the network (224 for ImageNet weights; smaller is faster).
      feature_size: 2048, or another size reached by a fixed seeded random projection
        (Gaussian, scaled by 1/sqrt(2048)) of the 2048-d pooled output.
      weights_path: Keras weights file for `ResNet50(include_top=False, pooling="avg")`
        (`.weights.h5` or legacy `.h5`, e.g. the ImageNet "notop" file). None: seeded random
        initialisation (the documented fallback when no weights can be had).
      seed: seed of the random initialisation and of the projection.
      batch_size: crops per forward pass.
      use_tf_function: run the network as a traced tf.function (fast for many batches; the first
        call pays a few seconds of tracing). False runs it eagerly.
    """

    name = "resnet50"

    def __init__(
        self,
        crop_size=224,
        feature_size=RESNET_FEATURE_SIZE,
        weights_path=None,
        seed=0,
        batch_size=64,
        use_tf_function=True,
    ):
        super().__init__(crop_size, feature_size)
        # local import: TensorFlow loads only when this extractor is built (the pixels one stays light)
        import keras  # noqa: PLC0415
        import tensorflow as tf  # noqa: PLC0415

        self.weights_path = weights_path
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        if crop_size < 32:
            raise ValueError(f"ResNet-50 needs crop_size >= 32, got {crop_size}")
        # Seed Keras for a reproducible initialisation without disturbing the caller's numpy/random state.
        np_state, py_state = np.random.get_state(), random.getstate()
        try:
            keras.utils.set_random_seed(self.seed)
            self.model = keras.applications.ResNet50(
                include_top=False, pooling="avg", weights=None, input_shape=(self.crop_size, self.crop_size, 3)
            )
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
        if weights_path:
            if not os.path.isfile(weights_path):
                raise FileNotFoundError(f"--resnet_weights file not found: {weights_path}")
            try:
                self.model.load_weights(weights_path)
            except Exception as e:
                raise ValueError(
                    f"--resnet_weights {weights_path}: cannot load into ResNet50(include_top=False, pooling='avg'): {e}"
                ) from e
        if self.feature_size != RESNET_FEATURE_SIZE:
            rng = np.random.default_rng([self.seed, 2048])
            self.projection = (
                rng.standard_normal((RESNET_FEATURE_SIZE, self.feature_size)) / np.sqrt(RESNET_FEATURE_SIZE)
            ).astype(np.float32)
        else:
            self.projection = None

        model = self.model
        mean = tf.constant(BGR_MEAN, tf.float32)

        def forward(batch):  # [B, S, S, 3] uint8 -> [B, 2048]
            # tf.reverse, not [..., ::-1]: TensorFlow's layout optimizer fails on a negative-stride slice
            x = tf.reverse(tf.cast(batch, tf.float32), axis=[-1]) - mean
            return model(x, training=False)

        self._forward = tf.function(forward, reduce_retracing=True, autograph=False) if use_tf_function else forward
        self._tf = tf

    def _extract(self, crops):
        tf = self._tf
        dataset = tf.data.Dataset.from_tensor_slices(crops).batch(self.batch_size).prefetch(tf.data.AUTOTUNE)
        outputs = [self._forward(batch).numpy() for batch in dataset]
        features = np.concatenate(outputs, axis=0)  # [N, 2048]
        if self.projection is not None:
            features = features @ self.projection
        return features

    def describe(self):
        info = super().describe()
        info.update(
            {
                "weights": os.path.basename(self.weights_path)
                if self.weights_path
                else f"random initialisation (seed {self.seed})",
                "batch_size": self.batch_size,
            }
        )
        return info
