"""Parity of the in-graph image path with offline preprocessing, on the demo's held-out images.

    python tools/raw_image_parity.py --demo_dir demo_out [--split test] [--json parity.json]

For every image of the held-out split (DEMO_DIR/data/finetune/<split>, the examples the demo evaluates on):

1. the image path itself: `kaleido-preprocess`'s PIL path (ImageLoader, the saliency ForegroundDetector,
   KaleidoPatchGenerator, the saved Keras feature extractor) against the in-graph one
   (preprocessors/graph_extractor.py `GraphImagePath`, what the raw signatures run), fed the image file's
   bytes: foreground boxes, the 55 positions, the 55 crops and their features; and the graph features,
   rounded as the shards store them, against the features the demo's preprocessing stored;
2. the exports: the demo's classifiers (runs/catepred_pretrained, runs/subcatepred_pretrained) and ITM model
   (runs/itm) exported with the raw signatures (`export_saved_model(..., image_path=DEMO_DIR/data)`, under
   --work_dir); `classify_image` against the offline classifier (the Keras model on the stored offline
   features, the same empty text), `classify_raw` against it with the product text, and `itm_score_raw` against
   the export's `itm_score` on the stored offline features, for each image's own text and for a mismatched one.

Tolerances (each checked; exit 1 when one is not met):
- boxes and positions: identical (graph_patches.py follows foreground.py and kaleido_patches.py step by step).
- crops: at most CROP_MAX_LEVELS grey level apart. Pillow resizes along both axes in fixed point with an
  intermediate rounding the graph path reproduces to within one level (tests/preprocessors/test_graph_image.py).
- features: |graph - offline| <= FEATURE_ATOL x max |offline feature| of the image. Equal crops give equal
  features up to float32 summation order (~1e-6 relative); one grey level is an input step of 1/255 ~ 0.4% of
  the input range, which moves a CNN feature by at most that times the network's gain on the pixel: 1e-2
  relative bounds it with room. Against the stored features the float16 storage adds one half float16 step
  (2^-11 relative).
- classes: the same class on at least AGREEMENT of the images; probabilities within PROB_ATOL (what the feature
  differences above do to a softmax output, measured well below it).

The numbers are printed (and written with --json); docs/raw_images.md quotes them for the quick demo.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

CROP_MAX_LEVELS = 1
FEATURE_ATOL = 1e-2
STORED_RTOL = 2.0**-11
AGREEMENT = 0.99
PROB_ATOL = 1e-2
BATCH = 16


class ParityError(Exception):
    """A problem with the demo directory or the flags: one line, exit 2."""


def _progress(line):
    print(line, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- held-out examples
def held_out(preprocess_dir, catalog_path, split="test"):
    """(examples {field: array [N, ...]}, image ids [N], image files [N]) of the finetune `split`."""
    # local import: TensorFlow loads after the flags are parsed (--help stays fast)
    from kaleido_tf.datasets import make_tfrecord_dataset  # noqa: PLC0415

    shards = os.path.join(preprocess_dir, "finetune", split)
    for path in (shards, catalog_path):
        if not os.path.exists(path):
            raise ParityError(f"no {path}: pass the demo's output directory (after make demo or make demo-quick)")
    batches = list(make_tfrecord_dataset(shards, 256, training=False, num_epochs=1).as_numpy_iterator())
    examples = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    files = {}
    with open(catalog_path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                for relative in json.loads(line)["images"]:
                    name = os.path.splitext(os.path.basename(relative))[0]
                    files[name] = os.path.join(os.path.dirname(catalog_path), relative)
    ids = [v.decode("utf-8") for v in examples["prod_img_id"].reshape(-1)]
    missing = [i for i in ids if i not in files]
    if missing:
        raise ParityError(f"{catalog_path}: no image for {len(missing)} held-out ids (first {missing[0]})")
    return examples, ids, [files[i] for i in ids]


# --------------------------------------------------------------------------- 1. the image path
def offline_patches(settings, extractor, path):
    """The PIL path of kaleido-preprocess on one image file -> box, positions [55, 5], crops, features [55, F]."""
    # local import: the offline preprocessing modules load with TensorFlow (--help stays fast)
    from kaleido_tf.preprocessors.image_loader import ImageLoader  # noqa: PLC0415
    from kaleido_tf.preprocessors.kaleido_patches import KaleidoPatchGenerator  # noqa: PLC0415

    loader = ImageLoader(settings.min_image_size, settings.max_image_size, settings.max_pixels)
    patcher = KaleidoPatchGenerator(settings.crop_size, foreground=settings.foreground_detector())
    patches = patcher(loader.load(path).image)
    crops = patches.crops()
    return {
        "box": np.asarray(patches.box, np.int64),
        "positions": patches.positions,
        "crops": crops,
        "features": np.asarray(extractor(crops), np.float32),
    }


def graph_patches(image_path, blobs):
    """The in-graph path on image bytes -> per image box, positions, crops; features [N, 55, F] batched."""
    # local import: TensorFlow loads after the flags are parsed (--help stays fast)
    import tensorflow as tf  # noqa: PLC0415

    patches = tf.function(image_path.patches, input_signature=[tf.TensorSpec([], tf.string)])
    per_image = []
    for blob in blobs:
        crops, positions, box, _ = patches(tf.constant(blob))
        per_image.append({"crops": crops.numpy(), "positions": positions.numpy(), "box": box.numpy()})
    features = np.concatenate(
        [image_path(tf.constant(blobs[i : i + BATCH]))["features"].numpy() for i in range(0, len(blobs), BATCH)]
    )
    return per_image, features


def stored_features(examples):
    """The shards' offline features, per image [N, 55, F] in level order (float16-rounded where stored so)."""
    # local import: the level layout of kaleido_tf (with TensorFlow, after the flags are parsed)
    from kaleido_tf.utils.kaleido_levels import FEATURE_KEY, LEVEL_SIZES, LEVEL_SUFFIXES  # noqa: PLC0415

    n = len(examples["prod_img_id"])
    parts = [
        examples[FEATURE_KEY.format(s)].reshape(n, size, -1).astype(np.float32)
        for s, size in zip(LEVEL_SUFFIXES, LEVEL_SIZES)
    ]
    return np.concatenate(parts, axis=1)


def image_path_parity(settings, files, examples=None):
    """The numbers of part 1 over the image `files` (with `examples`: against their stored features too)."""
    # local import: TensorFlow loads after the flags are parsed (--help stays fast)
    from kaleido_tf.preprocessors.graph_extractor import GraphImagePath  # noqa: PLC0415

    extractor = settings.build_extractor()
    path = GraphImagePath(
        extractor,
        foreground=settings.foreground_detector(),
        min_size=settings.min_image_size,
        max_size=settings.max_image_size,
        max_pixels=settings.max_pixels,
    )
    blobs = []
    for file in files:
        with open(file, "rb") as f:
            blobs.append(f.read())
    _progress(f"graph path: {len(blobs)} images")
    graph, graph_features = graph_patches(path, blobs)
    boxes_same = positions_same = crops_same = 0
    crop_max, crop_pixels, crop_total, feature_rel = 0, 0, 0, 0.0
    offline_features = []
    start = time.monotonic()
    for i, file in enumerate(files):
        if i and i % 10 == 0:
            rate = i / (time.monotonic() - start)
            _progress(f"offline path: {i}/{len(files)} images, {rate:.1f}/s, ETA {(len(files) - i) / rate:.0f} s")
        offline = offline_patches(settings, extractor, file)
        offline_features.append(offline["features"])
        boxes_same += int(np.array_equal(offline["box"], graph[i]["box"]))
        positions_same += int(np.array_equal(offline["positions"], graph[i]["positions"]))
        diff = np.abs(offline["crops"].astype(np.int32) - graph[i]["crops"].astype(np.int32))
        crops_same += int(diff.max() == 0)
        crop_max = max(crop_max, int(diff.max()))
        crop_pixels += int((diff.max(axis=-1) > 0).sum())
        crop_total += diff.shape[0] * diff.shape[1] * diff.shape[2]
        scale = max(float(np.abs(offline["features"]).max()), 1e-12)
        feature_rel = max(feature_rel, float(np.abs(graph_features[i] - offline["features"]).max()) / scale)
    n = len(files)
    result = {
        "images": n,
        "boxes_identical": boxes_same,
        "positions_identical": positions_same,
        "crops_identical_images": crops_same,
        "crop_max_levels": crop_max,
        "crop_pixels_differing": crop_pixels,
        "crop_pixels": crop_total,
        "feature_max_rel_diff": feature_rel,
    }
    if examples is not None:
        stored = stored_features(examples)
        if stored.shape != graph_features.shape:
            raise ParityError(f"stored features {stored.shape}, the image path makes {graph_features.shape}")
        fp16 = settings.feature_dtype == "float16"
        rounded = graph_features.astype(np.float16).astype(np.float32) if fp16 else graph_features
        scale = np.maximum(np.abs(stored).reshape(n, -1).max(axis=1), 1e-12)[:, None, None]
        result["stored_max_rel_diff"] = float((np.abs(rounded - stored) / scale).max())
        offline_rounded = np.stack(offline_features)
        if fp16:
            offline_rounded = offline_rounded.astype(np.float16).astype(np.float32)
        result["offline_vs_stored_max_rel_diff"] = float((np.abs(offline_rounded - stored) / scale).max())
    result["ok"] = (
        boxes_same == n
        and positions_same == n
        and crop_max <= CROP_MAX_LEVELS
        and feature_rel <= FEATURE_ATOL
        and result.get("stored_max_rel_diff", 0.0) <= FEATURE_ATOL + STORED_RTOL
    )
    return result, blobs


# --------------------------------------------------------------------------- 2. the exports
def _batches(n):
    return [slice(i, min(i + BATCH, n)) for i in range(0, n, BATCH)]


def _call(signature, n, **arrays):
    """Runs a loaded signature over `n` examples in batches -> {output: array [n, ...]}."""
    # local import: TensorFlow loads after the flags are parsed (--help stays fast)
    import tensorflow as tf  # noqa: PLC0415

    specs = signature.structured_input_signature[1]
    outs = []
    for part in _batches(n):
        args = {k: tf.constant(np.asarray(v[part]), dtype=specs[k].dtype) for k, v in arrays.items()}
        outs.append({k: v.numpy() for k, v in signature(**args).items()})
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def _model_features(model, examples, text=None):
    """The inputs a kaleido_tf model takes: the stored offline patch fields and text ids (`text` replaces them)."""
    # local import: the serving input fields (with TensorFlow, after the flags are parsed)
    from kaleido_tf.export.serving_inputs import patch_fields  # noqa: PLC0415

    use_mask = getattr(model, "use_image_mask", False)
    names = [f.name for f in patch_fields(model.config, use_image_mask=use_mask)]
    features = {k: examples[k] for k in names}
    features.update(text if text is not None else {k: examples[k] for k in ("input_ids", "input_mask", "segment_ids")})
    return features


def classifier_parity(model, loaded, examples, blobs):
    """classify_image / classify_raw of the export against the Keras classifier on the stored offline features."""
    # local import: TensorFlow loads after the flags are parsed (--help stays fast)
    import tensorflow as tf  # noqa: PLC0415

    n = len(blobs)
    blobs = np.array(blobs, dtype=object)
    texts = np.array([t.reshape(-1)[0] for t in examples["prod_desc"]], dtype=object)
    empty = _call(loaded.signatures["tokenize"], n, text=np.array([b""] * n, dtype=object))  # [CLS] [SEP]
    result = {}
    for name, raw, text in (
        ("classify_image", _call(loaded.signatures["classify_image"], n, image_bytes=blobs), empty),
        ("classify_raw", _call(loaded.signatures["classify_raw"], n, text=texts, image_bytes=blobs), None),
    ):
        features = _model_features(model, examples, text)
        probs = np.concatenate(
            [
                tf.nn.softmax(model({k: v[p] for k, v in features.items()}, training=False)["logits"]).numpy()
                for p in _batches(n)
            ]
        )
        same = float(np.mean(raw["class_id"] == probs.argmax(axis=1)))
        diff = float(np.abs(raw["probabilities"] - probs).max())
        result[name] = {"agreement": same, "prob_max_abs_diff": diff, "ok": same >= AGREEMENT and diff <= PROB_ATOL}
    return result


def itm_parity(loaded, examples, blobs):
    """itm_score_raw(text, image bytes) against itm_score on the stored offline features (own and other text)."""
    n = len(blobs)
    blobs = np.array(blobs, dtype=object)
    texts = np.array([t.reshape(-1)[0] for t in examples["prod_desc"]], dtype=object)
    patch_names = [k for k in loaded.signatures["itm_score"].structured_input_signature[1] if k.startswith("img_")]
    result = {}
    for name, shift in (("own text", 0), ("another product's text", n // 2)):
        order = np.roll(np.arange(n), shift)
        raw = _call(loaded.signatures["itm_score_raw"], n, text=texts[order], image_bytes=blobs)
        ids = {k: examples[k][order] for k in ("input_ids", "input_mask", "segment_ids")}
        offline = _call(loaded.signatures["itm_score"], n, **ids, **{k: examples[k] for k in patch_names})
        a, b = raw["match_probability"], offline["match_probability"]
        diff = float(np.abs(a - b).max())
        same = float(np.mean((a > 0.5) == (b > 0.5)))
        result[name] = {"decision_agreement": same, "prob_max_abs_diff": diff, "ok": diff <= PROB_ATOL}
    return result


def export_with_raw(model, export_dir, preprocess_dir, vocab_file, label_map=None):
    """The model exported with the raw signatures of the demo's preprocessing settings; the loaded SavedModel."""
    # local import: TensorFlow loads after the flags are parsed (--help stays fast)
    import tensorflow as tf  # noqa: PLC0415
    import tensorflow_text  # noqa: F401, PLC0415

    from kaleido_tf.export import export_saved_model  # noqa: PLC0415

    path = export_saved_model(
        model, export_dir, vocab_file=vocab_file, label_map=label_map, image_path=preprocess_dir, overwrite=True
    )
    return tf.saved_model.load(path)


# --------------------------------------------------------------------------- command line
def run(demo_dir, split="test", work_dir=None):
    """All the numbers for one demo output directory."""
    # local import: TensorFlow loads after the flags are parsed (--help stays fast)
    from kaleido_tf.export.image_inputs import ImagePathSettings  # noqa: PLC0415
    from kaleido_tf.model_zoo.registry import from_pretrained  # noqa: PLC0415

    data = os.path.join(demo_dir, "data")
    catalog = os.path.join(demo_dir, "catalog", "catalog.jsonl")
    vocab = os.path.join(demo_dir, "vocab.txt")
    examples, ids, files = held_out(data, catalog, split)
    settings = ImagePathSettings.from_preprocess_dir(data)
    report = {"split": split, "products": len({i.rsplit("_", 1)[0] for i in ids})}
    report["image_path"], blobs = image_path_parity(settings, files, examples)
    work = work_dir or tempfile.mkdtemp(prefix="raw_parity.")
    for task, label in (("catepred", "category"), ("subcatepred", "subcategory")):
        run_dir = os.path.join(demo_dir, "runs", f"{task}_pretrained")
        if not os.path.isdir(run_dir):
            raise ParityError(f"no {run_dir}: the demo's finetuned {label} classifier (run the demo first)")
        label_map = os.path.join(data, "label_maps", f"{label}.json")
        with open(label_map, encoding="utf-8") as f:
            num_classes = len(json.load(f))
        model = from_pretrained(run_dir, task=task, num_classes=num_classes)
        _progress(f"{task}: export with the raw signatures, then compare")
        loaded = export_with_raw(model, os.path.join(work, task), data, vocab, label_map)
        report[task] = classifier_parity(model, loaded, examples, blobs)
    itm_dir = os.path.join(demo_dir, "runs", "itm")
    if not os.path.isdir(itm_dir):
        raise ParityError(f"no {itm_dir}: the demo's ITM model (run the demo first)")
    _progress("itm: export with the raw signatures, then compare")
    loaded = export_with_raw(from_pretrained(itm_dir), os.path.join(work, "pretrain"), data, vocab)
    report["itm"] = itm_parity(loaded, examples, blobs)
    report["ok"] = report["image_path"]["ok"] and all(
        part["ok"] for key in ("catepred", "subcatepred", "itm") for part in report[key].values()
    )
    return report


def print_report(report, out=print):
    p = report["image_path"]
    n = p["images"]
    out(f"held-out images: {n} of {report['products']} products (split {report['split']})")
    out(f"foreground boxes identical: {p['boxes_identical']}/{n}; positions identical: {p['positions_identical']}/{n}")
    share = 100.0 * p["crop_pixels_differing"] / max(p["crop_pixels"], 1)
    out(
        f"crops: identical on {p['crops_identical_images']}/{n} images; {p['crop_pixels_differing']} of "
        f"{p['crop_pixels']} pixels ({share:.3f}%) differ, by at most {p['crop_max_levels']} grey level(s) "
        f"(tolerance {CROP_MAX_LEVELS})"
    )
    out(
        f"features, graph vs offline (float32): max |diff| {p['feature_max_rel_diff']:.2e} x max |feature| "
        f"(tolerance {FEATURE_ATOL:g})"
    )
    if "stored_max_rel_diff" in p:
        out(
            f"features vs the stored ones: graph {p['stored_max_rel_diff']:.2e}, offline recomputed "
            f"{p['offline_vs_stored_max_rel_diff']:.2e} x max |feature| (float16 storage: {STORED_RTOL:.1e} more)"
        )
    for task in ("catepred", "subcatepred"):
        for name, r in report[task].items():
            against = "image only" if name == "classify_image" else "with the product text"
            out(
                f"{task} {name} vs the offline classifier ({against}): same class on {100 * r['agreement']:.1f}%, "
                f"probabilities max |diff| {r['prob_max_abs_diff']:.2e} (need >= {100 * AGREEMENT:g}%, "
                f"<= {PROB_ATOL:g})"
            )
    for name, r in report["itm"].items():
        out(
            f"itm_score_raw vs itm_score on offline features ({name}): max |diff| {r['prob_max_abs_diff']:.2e} "
            f"(tolerance {PROB_ATOL:g}), same decision at 0.5 on {100 * r['decision_agreement']:.1f}%"
        )
    out("parity: " + ("all within the stated tolerances" if report["ok"] else "OUTSIDE the stated tolerances"))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="raw_image_parity.py", description=__doc__.splitlines()[0])
    parser.add_argument("--demo_dir", default="demo_out", help="the demo's output directory.")
    parser.add_argument("--split", default="test", help="the held-out split of data/finetune.")
    parser.add_argument("--work_dir", default=None, help="where the raw-signature exports go (default: a temp dir).")
    parser.add_argument("--json", default=None, help="also write the numbers to this JSON file.")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        report = run(args.demo_dir, args.split, args.work_dir)
    except (ParityError, OSError, ValueError) as e:
        print(f"raw_image_parity.py: error: {e}", file=sys.stderr)
        return 2
    print_report(report)
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        os.replace(tmp, args.json)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
