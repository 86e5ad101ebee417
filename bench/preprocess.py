"""Preprocessing throughput: patch feature extraction (and patch cutting), in patches per second.

    python bench/preprocess.py [--patches 128] [--batch_size 64] [--feature_size 2048]

    python bench/preprocess.py --paths [--products 2] [--crop_size 224] [--repeats 3]

    python bench/preprocess.py --command [--products 8] [--crop_size 224]

Measures, in one run: ResNet-50 at crop 224, ResNet-50 at crop 64 (seeded random weights: the speed
is that of ImageNet weights), the cheap "pixels" extractor at crops 224 and 64, and cutting an image
into its 55 resized crops (saliency box included). Each extractor gets one warm-up batch (graph
tracing) before the timed run. Prints one line per measurement.

With --paths: products/s (55 patch features from one product photo) of today's PIL path (ImageLoader,
ForegroundDetector, KaleidoPatchGenerator, the Keras ResNet-50 extractor), of `kaleido-preprocess
--image_path graph [--mixed_bfloat16]` (the PIL crops, then graph_extractor.GraphCropExtractor: ResNet-50
with BatchNormalization folded in, float32 or bfloat16) and of the bytes -> features graph the raw serving
signatures run (graph_extractor.GraphImagePath); then each extractor alone, its achieved FLOP/s (ResNet-50
FLOPs counted from its Conv2D/Dense layers, 2 per multiply-add) against the machine's matmul peak measured
in the same run (a 4096^3 tf.matmul in float32 and bfloat16). Each figure is the best of --repeats rounds.

With --command: the wall time of whole `kaleido-preprocess` runs (start-up and tracing included) with
`--image_path pil`, `graph` and `graph --mixed_bfloat16` on a written catalog of --products photos.
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


def _write_photos(directory, products):
    """`products` product photos (`_product_jpeg`) written as DIRECTORY/p<i>.jpg; returns their bytes and paths."""
    blobs, paths = [_product_jpeg(i) for i in range(products)], []
    for i, data in enumerate(blobs):
        paths.append(os.path.join(directory, f"p{i}.jpg"))
        with open(paths[-1], "wb") as f:
            f.write(data)
    return blobs, paths


def time_paths(products, crop_size, batch_size, repeats=3):
    """Products/s of the image paths and the extractor's achieved FLOP/s; each timing is the best of `repeats`
    rounds, every round running all the paths in turn (the machine's drift then hits them alike)."""
    import tempfile

    import tensorflow as tf

    from kaleido_tf.preprocessors.graph_extractor import GraphCropExtractor, GraphImagePath
    from kaleido_tf.preprocessors.image_loader import ImageLoader

    extractor = build_feature_extractor("resnet50", crop_size=crop_size, batch_size=batch_size)
    detector = ForegroundDetector("saliency")
    flops_per_crop = resnet_flops(extractor.model)
    print(f"ResNet-50 at {crop_size}: {flops_per_crop / 1e9:.2f} GFLOP per crop (counted)")
    peaks = {"float32": matmul_peak(tf.float32), "bfloat16": matmul_peak(tf.bfloat16)}
    for k, v in peaks.items():
        print(f"matmul peak {k:8s}: {v / 1e9:8.1f} GFLOP/s (4096^3 tf.matmul)")

    loader, generator = ImageLoader(), KaleidoPatchGenerator(crop_size=crop_size, foreground=detector)
    graph_crops = {bf16: GraphCropExtractor(extractor, batch_size, mixed_bfloat16=bf16) for bf16 in (False, True)}
    graph_bytes = {bf16: GraphImagePath(extractor, foreground=detector, mixed_bfloat16=bf16) for bf16 in (False, True)}
    with tempfile.TemporaryDirectory() as tmp:
        blobs, paths = _write_photos(tmp, products)
        batch = tf.constant(blobs)

        def pil_crops():
            return np.concatenate([generator(loader.load(p).image).crops() for p in paths])

        crops = pil_crops()
        runs = {  # name -> what one call does
            "pil float32": lambda: extractor(pil_crops()),
            "preprocess graph float32": lambda: graph_crops[False](pil_crops()),
            "preprocess graph bf16": lambda: graph_crops[True](pil_crops()),
            "bytes graph float32": lambda: graph_bytes[False](batch)["features"].numpy(),
            "bytes graph bf16": lambda: graph_bytes[True](batch)["features"].numpy(),
        }
        extractors = {  # the crops -> features part alone: name -> (what one call does, its dtype)
            "keras ResNet-50 float32": (lambda: extractor(crops), "float32"),
            "folded ResNet-50 float32": (lambda: graph_crops[False](crops), "float32"),
            "folded ResNet-50 bfloat16": (lambda: graph_crops[True](crops), "bfloat16"),
        }
        every = {**runs, **{name: fn for name, (fn, _) in extractors.items()}}
        for fn in every.values():
            fn()  # warm-up (tracing)
        best = {name: float("inf") for name in every}
        for _ in range(repeats):
            for name, fn in every.items():
                best[name] = min(best[name], _timed(fn))
    base = products / best["pil float32"]
    print(f"image paths ({products} product photos, {products * 55} crops, best of {repeats}):")
    for name in runs:
        rate = products / best[name]
        print(f"  {name:26s}: {rate:7.3f} products/s ({rate * 55:6.1f} crops/s, {rate / base:4.2f}x the PIL path)")
    print("extractor alone (crops -> features):")
    for name, (_, dtype) in extractors.items():
        rate = len(crops) / best[name]
        flops = rate * flops_per_crop
        print(
            f"  {name:26s}: {rate:6.1f} crops/s, {flops / 1e9:7.1f} GFLOP/s = {100 * flops / peaks[dtype]:5.1f}% "
            f"of the {dtype} matmul peak"
        )
    return best


def time_command(products, crop_size, batch_size):
    """Wall time of whole `kaleido-preprocess` runs (start-up included) on a written catalog of `products`
    product photos (600 x 800 JPEGs, one image each, the default task "all"), for the three image paths."""
    import json
    import subprocess
    import tempfile

    runs = {
        "pil float32": [],
        "graph float32": ["--image_path", "graph"],
        "graph bf16": ["--image_path", "graph", "--mixed_bfloat16"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        _, paths = _write_photos(tmp, products)
        catalog = os.path.join(tmp, "catalog.jsonl")
        with open(catalog, "w", encoding="utf-8") as f:
            for i, path in enumerate(paths):
                subcat = ("t-shirt", "dress", "skirt")[i % 3]
                record = {
                    "product_id": f"p{i}",
                    "images": [os.path.basename(path)],
                    "category": "clothes",
                    "subcategory": subcat,
                    "text": f"a {subcat} number {i} with a round collar and short sleeves",
                }
                f.write(json.dumps(record) + "\n")
        rates = {}
        for name, extra in runs.items():
            out = os.path.join(tmp, name.replace(" ", "_"))
            argv = [sys.executable, "-m", "kaleido_tf.preprocessors.cli", "--catalog", catalog, "--output_dir", out]
            argv += ["--feature_extractor", "resnet50", "--crop_size", str(crop_size), "--batch_size", str(batch_size)]
            argv += ["--no_progress", *extra]
            elapsed = _timed(
                lambda a=argv: subprocess.run(a, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
            rates[name] = products / elapsed
            print(
                f"kaleido-preprocess {name:14s}: {elapsed:7.1f} s for {products} products = "
                f"{rates[name]:.3f} products/s ({rates[name] / rates['pil float32']:4.2f}x the PIL path)"
            )
    return rates


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=128, help="patches per timed run (ResNet at 224)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--feature_size", type=int, default=2048)
    parser.add_argument("--paths", action="store_true", help="products/s of the PIL and the graph image paths")
    parser.add_argument("--products", type=int, default=2, help="with --paths/--command: product photos per run")
    parser.add_argument("--command", action="store_true", help="whole kaleido-preprocess runs, the three image paths")
    parser.add_argument("--crop_size", type=int, default=224, help="with --paths: ResNet-50 input side")
    parser.add_argument("--repeats", type=int, default=3, help="with --paths: timed rounds (the best is shown)")
    args = parser.parse_args(argv)
    try:
        import tensorflow as tf

        devices = [d.device_type for d in tf.config.list_logical_devices()]
    except Exception:  # pragma: no cover - informative only
        devices = []
    print(f"devices: {devices}, cpu cores: {os.cpu_count()}, batch_size {args.batch_size}")
    if args.paths:
        time_paths(args.products, args.crop_size, args.batch_size, args.repeats)
        return 0
    if args.command:
        time_command(args.products, args.crop_size, args.batch_size)
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
