"""Preprocessing throughput: patch feature extraction (and patch cutting), in patches per second.

    python bench/preprocess.py [--patches 128] [--batch_size 64] [--feature_size 2048]

Measures, in one run: ResNet-50 at crop 224, ResNet-50 at crop 64 (seeded random weights: the speed
is that of ImageNet weights), the cheap "pixels" extractor at crops 224 and 64, and cutting an image
into its 55 resized crops (saliency box included). Each extractor gets one warm-up batch (graph
tracing) before the timed run. Prints one line per measurement.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from PIL import Image, ImageDraw

from kaleido_tf.preprocessors.feature_extractor import build_feature_extractor
from kaleido_tf.preprocessors.foreground import ForegroundDetector
from kaleido_tf.preprocessors.kaleido_patches import KaleidoPatchGenerator


def _time_extractor(name, crop_size, patches, batch_size, feature_size):
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (patches, crop_size, crop_size, 3), dtype=np.uint8)
    extractor = build_feature_extractor(name, crop_size=crop_size, feature_size=feature_size, batch_size=batch_size)
    extractor(crops[:batch_size])  # warm-up: tracing, memory allocation
    start = time.perf_counter()
    features = extractor(crops)
    elapsed = time.perf_counter() - start
    assert features.shape == (patches, feature_size)
    return patches / elapsed, elapsed


def _time_cutting(crop_size, images):
    img = Image.new("RGB", (800, 1000), (250, 250, 250))
    ImageDraw.Draw(img).ellipse((150, 120, 650, 900), fill=(180, 40, 60))
    generator = KaleidoPatchGenerator(crop_size=crop_size, foreground=ForegroundDetector("saliency"))
    start = time.perf_counter()
    for _ in range(images):
        crops = generator(img).crops()
    elapsed = time.perf_counter() - start
    assert crops.shape == (55, crop_size, crop_size, 3)
    return images * 55 / elapsed, elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=128, help="patches per timed run (ResNet at 224)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--feature_size", type=int, default=2048)
    args = parser.parse_args(argv)
    try:
        import tensorflow as tf

        devices = [d.device_type for d in tf.config.list_logical_devices()]
    except Exception:  # pragma: no cover - informative only
        devices = []
    print(f"devices: {devices}, cpu cores: {os.cpu_count()}, batch_size {args.batch_size}")
    runs = [
        ("resnet50", 224, args.patches),
        ("resnet50", 64, args.patches * 4),
        ("pixels", 224, args.patches * 4),
        ("pixels", 64, args.patches * 16),
    ]
    for name, crop, n in runs:
        rate, elapsed = _time_extractor(name, crop, n, args.batch_size, args.feature_size)
        print(f"features {name:8s} crop {crop:3d}: {rate:10.1f} patches/s ({n} patches in {elapsed:.2f} s)")
    for crop in (224, 64):
        rate, elapsed = _time_cutting(crop, images=8)
        print(f"cutting  800x1000 image crop {crop:3d}: {rate:10.1f} patches/s (8 images in {elapsed:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
