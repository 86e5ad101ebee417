"""The whole image path as one tf.Module: a batch of JPEG/PNG bytes -> 55 patch features and positions.

`GraphImagePath(extractor)` wraps one of the offline patch feature extractors (resnet50, pixels, keras;
see preprocessors/feature_extractor.py) and runs, in TensorFlow ops only:
decode (graph_image) -> saliency box -> 55 kaleido boxes and positions -> PIL-exact crops (graph_patches)
-> the extractor's network. `graph_crop_features(extractor)` is the crop -> feature part alone, the batched
extractor behind `kaleido-preprocess --image_path graph` (many crops per call, on a GPU when TensorFlow sees
one). ResNet-50 runs with its BatchNormalization folded into the convolutions (folded_resnet.py), in float32
or, with mixed_bfloat16, in bfloat16.
"""

import logging

import numpy as np
import tensorflow as tf

from kaleido_tf.preprocessors.extractor_base import PatchFeatureExtractor
from kaleido_tf.preprocessors.folded_resnet import FoldedResNet50
from kaleido_tf.preprocessors.graph_image import GraphImageDecoder
from kaleido_tf.preprocessors.graph_patches import GraphForeground, kaleido_boxes, kaleido_crops
from kaleido_tf.preprocessors.resnet_extractor import BGR_MEAN, RESNET_FEATURE_SIZE
from kaleido_tf.utils.cpu_features import BF16_FLAGS, has_native_bfloat16
from kaleido_tf.utils.kaleido_levels import NUM_PATCHES, POSITION_SIZE

logger = logging.getLogger(__name__)


def _pixel_features(extractor):
    """TF version of PixelStatsPatchExtractor._extract (same raw vector, same projection)."""
    s, g, bins = extractor.crop_size, extractor.grid, extractor.bins
    projection = tf.constant(extractor.projection)  # [raw, F]
    edges = extractor._edges
    pool = np.zeros((g, s), np.float32)
    for i in range(g):
        pool[i, edges[i] : edges[i + 1]] = 1.0
    counts = np.diff(edges)[:, None] * np.diff(edges)[None, :]  # [g, g]
    pool, counts = tf.constant(pool), tf.constant(counts[None, :, :, None], tf.float32)

    def fn(crops):  # [N, S, S, 3] uint8 -> [N, F]
        n = tf.shape(crops)[0]
        x = tf.cast(crops, tf.float32) / 255.0
        mean = tf.reduce_mean(x, axis=(1, 2))
        std = tf.math.reduce_std(x, axis=(1, 2))
        q = (tf.cast(crops, tf.int32) * bins) // 256
        codes = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]  # [N, S, S]
        hist = tf.reduce_sum(tf.one_hot(tf.reshape(codes, [n, -1]), bins**3, dtype=tf.float32), axis=1) / (s * s)
        sums = tf.einsum("is,jt,nstc->nijc", pool, pool, x)  # [N, g, g, 3]
        small = sums / counts - 0.5
        raw = tf.concat([mean, std, hist, tf.reshape(small, [n, -1])], axis=1)
        return tf.matmul(raw, projection)

    return fn


def graph_crop_features(extractor, mixed_bfloat16=False):
    """A traced function uint8 crops [N, S, S, 3] -> float32 features [N, F] for `extractor`."""
    name = extractor.name
    if mixed_bfloat16 and name != "resnet50":
        raise ValueError(f"--mixed_bfloat16 applies to the resnet50 extractor, not to {name!r}")
    if name == "pixels":
        fn = _pixel_features(extractor)
    elif name == "resnet50":
        if mixed_bfloat16 and not tf.config.list_logical_devices("GPU") and has_native_bfloat16() is False:
            logger.warning(
                "--mixed_bfloat16: this CPU has no bfloat16 units (none of %s in /proc/cpuinfo), so bfloat16 runs "
                "emulated and is likely slower than float32; leave --mixed_bfloat16 out on this machine",
                "/".join(BF16_FLAGS),
            )
        # BatchNormalization folded into the convolutions, bfloat16 weights held once (folded_resnet.py)
        network = FoldedResNet50(extractor.model, BGR_MEAN, "bfloat16" if mixed_bfloat16 else "float32")
        projection = None if extractor.projection is None else tf.constant(extractor.projection)

        def fn(crops):
            out = network(crops)  # [N, 2048] float32
            return out if projection is None else tf.matmul(out, projection)
    elif name == "keras":
        model = extractor.model

        def fn(crops):
            return tf.cast(model(tf.cast(crops, tf.float32) / 255.0, training=False), tf.float32)
    else:
        raise ValueError(f"no graph version of the {name!r} extractor")
    spec = tf.TensorSpec([None, extractor.crop_size, extractor.crop_size, 3], tf.uint8)
    return tf.function(fn, input_signature=[spec], autograph=False)


class GraphCropExtractor(PatchFeatureExtractor):
    """An offline extractor's crops -> features through `graph_crop_features` (`--image_path graph`).

    Many crops per call (`batch_size` per traced step, fixed so the function is traced once), float32 or
    mixed_bfloat16 (ResNet-50), on the GPU when TensorFlow sees one.
    """

    def __init__(self, extractor, batch_size=64, mixed_bfloat16=False):
        super().__init__(extractor.crop_size, extractor.feature_size)
        self.name = extractor.name
        self.inner = extractor
        self.batch_size = int(batch_size)
        self.mixed_bfloat16 = bool(mixed_bfloat16)
        self.fn = graph_crop_features(extractor, mixed_bfloat16=mixed_bfloat16)

    def _extract(self, crops):
        n, b = len(crops), self.batch_size
        out = []
        for i in range(0, n, b):
            chunk = crops[i : i + b]
            pad = b - len(chunk)
            if pad:  # one traced shape
                chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], chunk.dtype)])
            out.append(self.fn(tf.constant(chunk)).numpy()[: b - pad])
        return np.concatenate(out)

    def describe(self):
        info = self.inner.describe()
        info.update({"image_path": "graph", "mixed_bfloat16": self.mixed_bfloat16})
        return info


class GraphImagePath(tf.Module):
    """Image bytes [B] -> {"features" [B, 55, F], "positions" [B, 55, 5], "box" [B, 4], "fallback" [B]}.

    Args:
      extractor: an offline PatchFeatureExtractor (its weights / projection are reused).
      foreground: a ForegroundDetector (its parameters are reused); None means the full image.
      min_size, max_size, max_pixels: as ImageLoader / GraphImageDecoder.
      mixed_bfloat16: run ResNet-50 in bfloat16 (float32 outputs).
    """

    def __init__(
        self, extractor, foreground=None, min_size=32, max_size=2048, max_pixels=200_000_000, mixed_bfloat16=False
    ):
        super().__init__(name="graph_image_path")
        self.crop_size = int(extractor.crop_size)
        self.feature_size = int(extractor.feature_size)
        self.decoder = GraphImageDecoder(min_size=min_size, max_size=max_size, max_pixels=max_pixels)
        self.foreground = GraphForeground.from_detector(foreground) if foreground is not None else None
        self.crop_features = graph_crop_features(extractor, mixed_bfloat16=mixed_bfloat16)
        self.run = tf.function(
            self._call, input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")], autograph=False
        )

    def __call__(self, image_bytes):
        """image_bytes: tf.string [B]. Returns the dict described in the class docstring."""
        return self.run(tf.convert_to_tensor(image_bytes, tf.string))

    def patches(self, data):
        """One image's bytes -> (crops uint8 [55, S, S, 3], positions [55, 5], box [4], fallback)."""
        image = self.decoder.decode(data)
        shape = tf.shape(image)
        if self.foreground is None:
            box, fallback = tf.stack([0, 0, shape[1], shape[0]]), tf.constant(0)
        else:
            box, fallback = self.foreground(image)
        cells, positions, box = kaleido_boxes(box, shape[1], shape[0])
        return kaleido_crops(image, cells, self.crop_size), positions, box, fallback

    def _call(self, image_bytes):
        specs = (
            tf.TensorSpec([NUM_PATCHES, self.crop_size, self.crop_size, 3], tf.uint8),
            tf.TensorSpec([NUM_PATCHES, POSITION_SIZE], tf.float32),
            tf.TensorSpec([4], tf.int32),
            tf.TensorSpec([], tf.int32),
        )
        crops, positions, box, fallback = tf.map_fn(self.patches, image_bytes, fn_output_signature=specs)
        b = tf.shape(crops)[0]
        flat = tf.reshape(crops, [-1, self.crop_size, self.crop_size, 3])  # [B * 55, S, S, 3]
        features = tf.reshape(self.crop_features(flat), [b, NUM_PATCHES, self.feature_size])
        return {"features": features, "positions": positions, "box": box, "fallback": fallback}


__all__ = ["GraphCropExtractor", "GraphImagePath", "graph_crop_features", "RESNET_FEATURE_SIZE"]
