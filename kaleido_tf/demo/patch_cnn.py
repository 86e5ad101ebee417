"""The demo's patch-feature model: a small CNN trained on the catalog's train split, standing in for the
ImageNet ResNet-50 the released model reads.

Why: with the cheap "pixels" extractor the garment and its colour are not linearly readable from a patch
feature, and image-text matching (ITM, hence retrieval) stays at chance on this machine's budget
(docs/demo.md has the measurements). A CNN trained on the catalog's own crops gives features in which they are.

The CNN sees the 55 kaleido crops of every train image (the preprocessing pipeline's own patch generator) and
learns the product's subcategory (from the larger crops), colour and pattern. The saved feature model is the
CNN up to its feature layer, beside the crop averaged down to a few pixels (the layout that the rotation task
reads; a CNN trained on turned crops to keep it learned the garment far worse), followed by a
`keras.layers.Normalization` adapted on the train crops: every feature dimension has zero mean and unit
variance. Preprocessing then runs it with `--feature_extractor keras --feature_model <path>`.
"""

import json
import os

import keras
import numpy as np
from PIL import Image

from kaleido_tf.preprocessors.foreground import ForegroundDetector
from kaleido_tf.preprocessors.kaleido_patches import KaleidoPatchGenerator
from kaleido_tf.utils.kaleido_levels import LEVEL_OFFSETS, NUM_PATCHES

LABEL_KEYS = ("subcategory", "colour", "pattern")


def _label(record, key):
    if key in record:
        return record[key]
    return record.get("attributes", {})[key]


def catalog_crops(catalog_path, crop_size, split="train", foreground="saliency"):
    """The kaleido crops of every image of the products in `split`.

    Returns (crops uint8 [N, S, S, 3], labels int32 [N, 3] = subcategory, colour, pattern ids,
    {label key: number of classes}). The class ids index the sorted values over the whole catalog.
    """

    root = os.path.dirname(os.path.abspath(catalog_path))
    records = []
    with open(catalog_path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            missing = [k for k in LABEL_KEYS if k not in record and k not in record.get("attributes", {})]
            if missing:
                raise ValueError(f"{catalog_path}:{number}: the record has no {', '.join(missing)} label")
            records.append(record)
    vocabularies = {key: sorted({_label(r, key) for r in records}) for key in LABEL_KEYS}
    generator = KaleidoPatchGenerator(crop_size, ForegroundDetector(foreground))
    crops, labels = [], []
    for record in records:
        if record.get("split") != split:
            continue
        label = np.asarray([vocabularies[key].index(_label(record, key)) for key in LABEL_KEYS], np.int32)
        for image in record["images"]:
            with Image.open(os.path.join(root, image)) as im:
                patches = generator(im.convert("RGB")).crops()  # [55, S, S, 3]
            crops.append(patches)
            labels.append(np.tile(label[None], (len(patches), 1)))
    if not crops:
        raise ValueError(f"{catalog_path}: no images in split {split!r} to train the patch CNN on")
    return np.concatenate(crops), np.concatenate(labels), {k: len(v) for k, v in vocabularies.items()}


def build_patch_cnn(crop_size, feature_size, classes):
    """(trainer with one head per entry of `classes`, feature model) sharing the convolution stack."""

    inputs = keras.Input((crop_size, crop_size, 3), name="crops")  # [N, S, S, 3] in [0, 1]
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(inputs)
    h = keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu", name="conv2")(h)
    h = keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu", name="conv3")(h)
    h = keras.layers.Flatten(name="flatten")(h)  # [N, S/4 * S/4 * 64]: the layout survives
    features = keras.layers.Dense(feature_size, activation="relu", name="features")(h)
    heads = [keras.layers.Dense(n, name=key)(features) for key, n in classes.items()]
    return keras.Model(inputs, heads, name="patch_cnn_trainer"), keras.Model(inputs, features, name="patch_cnn")


def train_patch_cnn(
    catalog_path,
    model_path,
    crop_size=16,
    feature_size=64,
    layout_grid=4,
    epochs=3,
    batch_size=64,
    garment_levels=3,
    seed=0,
    verbose=0,
):
    """Trains the CNN on the train split and saves the feature model at `model_path` (written to a temporary
    name, then renamed). Returns the training accuracies of the last epoch {subcategory, colour, pattern}.

    The saved model maps crops [N, S, S, 3] in [0, 1] to features [N, feature_size + 3 * layout_grid**2]: the
    CNN's `feature_size` features, then the crop averaged down to a `layout_grid` x `layout_grid` colour image
    (the layout the rotation and jigsaw tasks read), each dimension standardised on the train crops. The
    subcategory is learned from the crops of kaleido levels 1..`garment_levels` only: a cell of the finer grids
    shows a piece of cloth, from which the garment cannot be told, while colour and pattern can.
    """

    if layout_grid and crop_size % layout_grid:
        raise ValueError(f"layout_grid {layout_grid} must divide crop_size {crop_size}")
    crops, labels, classes = catalog_crops(catalog_path, crop_size)
    x = crops.astype(np.float32) / 255.0  # [N, S, S, 3]
    keras.utils.set_random_seed(seed)
    trainer, extractor = build_patch_cnn(crop_size, feature_size, classes)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    trainer.compile(keras.optimizers.Adam(1e-3), [loss] * len(classes), metrics=[["accuracy"]] * len(classes))
    slot = np.arange(len(x)) % NUM_PATCHES  # crops come 55 per image, in slot order
    garment = slot < (LEVEL_OFFSETS[garment_levels] if garment_levels < len(LEVEL_OFFSETS) else NUM_PATCHES)
    weights = [garment.astype(np.float32) if key == "subcategory" else np.ones(len(x), np.float32) for key in classes]
    history = trainer.fit(
        x,
        [labels[:, i] for i in range(len(classes))],
        sample_weight=weights,
        batch_size=batch_size,
        epochs=epochs,
        shuffle=True,
        verbose=verbose,
    )

    inputs = keras.Input((crop_size, crop_size, 3), name="crops")
    branches = [extractor(inputs)]  # [N, feature_size]
    if layout_grid:
        pooled = keras.layers.AveragePooling2D(crop_size // layout_grid, name="layout_pool")(inputs)
        branches.append(keras.layers.Flatten(name="layout")(pooled))  # [N, 3 * layout_grid**2]
    features = branches[0] if len(branches) == 1 else keras.layers.Concatenate(name="concat")(branches)
    raw = keras.Model(inputs, features)
    normalization = keras.layers.Normalization(axis=-1, name="standardize")
    normalization.adapt(raw.predict(x, batch_size=1024, verbose=0))
    model = keras.Model(inputs, normalization(raw(inputs)), name="patch_features")
    directory = os.path.dirname(os.path.abspath(model_path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(model_path)}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, model_path)
    last = {k: v[-1] for k, v in history.history.items()}
    return {key: float(last.get(f"{key}_accuracy", float("nan"))) for key in classes}
