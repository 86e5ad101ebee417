"""Preprocessing throughput: patch feature extraction (and patch cutting), in patches per second.

    python bench/preprocess.py [--patches 128] [--batch_size 64] [--feature_size 2048]

    python bench/preprocess.py --paths [--products 2] [--crop_size 224]

Measures, in one run: ResNet-50 at crop 224, ResNet-50 at crop 64 (seeded random weights: the speed
is that of ImageNet weights), the cheap "pixels" extractor at crops 224 and 64, and cutting an image
into its 55 resized crops (saliency box included). Each extractor gets one warm-up batch (graph
tracing) before the timed run. Prints one line per measurement.

With --paths: products/s (55 patch features from one product photo's bytes) of today's PIL path
(ImageLoader, ForegroundDetector, KaleidoPatchGenerator, ResNet-50 extractor) and of the TF-ops graph path
(preprocessors/graph_extractor.GraphImagePath) in float32 and mixed_bfloat16; the extractor's achieved
FLOP/s (ResNet-50 FLOPs counted from its Conv2D/Dense layers, 2 per multiply-add) against the machine's
matmul peak measured in the same run (a 4096^3 tf.matmul in float32 and bfloat16).
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


def resnet_flops(model):
    """Multiply-adds x 2 of one forward pass, from the Conv2D and Dense layers' shapes."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw, c_in, _ = layer.kernel.shape
            total += 2 * h * w * kh * kw * c_in * c_out
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return total


def matmul_peak(dtype, n=4096, repeats=3):
    """FLOP/s of an n x n x n tf.matmul (best of `repeats`, after one warm-up)."""
    import tensorflow as tf

    a = tf.random.normal([n, n], dtype=tf.float32)
    a = tf.cast(a, dtype)
    fn = tf.function(lambda x: tf.reduce_sum(tf.cast(tf.matmul(x, x), tf.float32)))
    fn(a).numpy()
    best = min(_timed(lambda: fn(a).numpy()) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _product_jpeg(seed):
    import io

    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (600, 800), (245, 245, 245))
    draw = ImageDraw.Draw(img)
    draw.ellipse((120, 100, 480, 720), fill=tuple(int(v) for v in rng.integers(20, 200, 3)))
    draw.rectangle((200, 300, 400, 340), fill=(250, 250, 30))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def time_paths(products, crop_size, batch_size):
    """Products/s of the PIL path and the graph path (float32, mixed_bfloat16), and achieved FLOP/s."""
    import tempfile

    import tensorflow as tf

    from kaleido_tf.preprocessors.graph_extractor import GraphImagePath
    from kaleido_tf.preprocessors.image_loader import ImageLoader

    blobs = [_product_jpeg(i) for i in range(products)]
    extractor = build_feature_extractor("resnet50", crop_size=crop_size, batch_size=batch_size)
    detector = ForegroundDetector("saliency")
    flops_per_crop = resnet_flops(extractor.model)
    print(f"ResNet-50 at {crop_size}: {flops_per_crop / 1e9:.2f} GFLOP per crop (counted)")
    peaks = {"float32": matmul_peak(tf.float32), "bfloat16": matmul_peak(tf.bfloat16)}
    for k, v in peaks.items():
        print(f"matmul peak {k:8s}: {v / 1e9:8.1f} GFLOP/s (4096^3 tf.matmul)")

    loader, generator = ImageLoader(), KaleidoPatchGenerator(crop_size=crop_size, foreground=detector)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, data in enumerate(blobs):
            paths.append(os.path.join(tmp, f"{i}.jpg"))
            with open(paths[-1], "wb") as f:
                f.write(data)

        def pil():
            crops = np.concatenate([generator(loader.load(p).image).crops() for p in paths])
            return extractor(crops)

        pil()  # warm-up (tracing)
        elapsed = _timed(pil)
    results = {"pil float32": elapsed}
    for name, bf16 in (("graph float32", False), ("graph mixed_bfloat16", True)):
        graph = GraphImagePath(extractor, foreground=detector, mixed_bfloat16=bf16)
        batch = tf.constant(blobs)
        graph(batch)["features"].numpy()  # warm-up (tracing)
        results[name] = _timed(lambda g=graph, b=batch: g(b)["features"].numpy())
    base = products / results["pil float32"]
    for name, elapsed in results.items():
        rate = products / elapsed
        flops = rate * 55 * flops_per_crop
        peak = peaks["bfloat16" if "bfloat16" in name else "float32"]
        print(
            f"{name:22s}: {rate:7.3f} products/s ({rate * 55:6.1f} crops/s, {rate / base:4.2f}x PIL), "
            f"extractor {flops / 1e9:7.1f} GFLOP/s = {100 * flops / peak:5.1f}% of the matmul peak"
        )
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=128, help="patches per timed run (ResNet at 224)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--feature_size", type=int, default=2048)
    parser.add_argument("--paths", action="store_true", help="products/s of the PIL and the graph image paths")
    parser.add_argument("--products", type=int, default=2, help="with --paths: product photos per timed run")
    parser.add_argument("--crop_size", type=int, default=224, help="with --paths: ResNet-50 input side")
    args = parser.parse_args(argv)
    try:
        import tensorflow as tf

        devices = [d.device_type for d in tf.config.list_logical_devices()]
    except Exception:  # pragma: no cover - informative only
        devices = []
    print(f"devices: {devices}, cpu cores: {os.cpu_count()}, batch_size {args.batch_size}")
    if args.paths:
        time_paths(args.products, args.crop_size, args.batch_size)
        return 0
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
