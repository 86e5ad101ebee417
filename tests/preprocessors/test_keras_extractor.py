"""`--feature_extractor keras`: a saved Keras model as the patch feature extractor."""

import json
import os

import keras
import numpy as np
import pytest

from kaleido_tf.datasets import make_tfrecord_dataset
from kaleido_tf.preprocessors.cli import build_parser, config_from_args
from kaleido_tf.preprocessors.cli import main as preprocess_main
from kaleido_tf.preprocessors.feature_extractor import build_feature_extractor
from kaleido_tf.preprocessors.kaleido_patches import KaleidoPatchGenerator

from .factory import make_catalog, small_args


def _save_model(path, crop=16, features=8, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((crop, crop, 3))
    hidden = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(features)(hidden))
    model.save(path)
    return model


def _crops(n=7, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_features_are_the_models_outputs_on_crops_in_0_1(tmp_path):
    path = str(tmp_path / "cnn.keras")
    model = _save_model(path)
    crops = _crops()
    extractor = build_feature_extractor("keras", crop_size=16, feature_size=8, feature_model=path, batch_size=3)
    features = extractor(crops)
    assert features.shape == (7, 8) and features.dtype == np.float32
    expected = np.asarray(model(crops.astype(np.float32) / 255.0))
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
    assert extractor.describe() == {"name": "keras", "crop_size": 16, "feature_size": 8, "model": "cnn.keras"}


def test_bad_models_are_named(tmp_path):
    path = str(tmp_path / "cnn.keras")
    _save_model(path)
    with pytest.raises(ValueError, match="needs --feature_model"):
        build_feature_extractor("keras", crop_size=16, feature_size=8)
    with pytest.raises(FileNotFoundError, match="--feature_model file not found: .*absent.keras"):
        build_feature_extractor("keras", crop_size=16, feature_size=8, feature_model=str(tmp_path / "absent.keras"))
    junk = tmp_path / "junk.keras"
    junk.write_text("not a model")
    with pytest.raises(ValueError, match="junk.keras: cannot load it as a Keras model"):
        build_feature_extractor("keras", crop_size=16, feature_size=8, feature_model=str(junk))
    with pytest.raises(ValueError, match=r"input shape \[None, 16, 16, 3\], expected \[None, 32, 32, 3\]"):
        build_feature_extractor("keras", crop_size=32, feature_size=8, feature_model=path)
    with pytest.raises(ValueError, match=r"output shape \[None, 8\], expected \[None, 6\] \(--patch_feature_size 6\)"):
        build_feature_extractor("keras", crop_size=16, feature_size=6, feature_model=path)
    with pytest.raises(ValueError, match="--feature_model is given but --feature_extractor is 'pixels'"):
        build_feature_extractor("pixels", crop_size=16, feature_size=8, feature_model=path)


def test_config_checks_the_flag_pair(tmp_path):
    catalog, _ = make_catalog(str(tmp_path), num_products=2)
    out = str(tmp_path / "out")
    with pytest.raises(ValueError, match="--feature_extractor keras needs --feature_model"):
        config_from_args(build_parser().parse_args(small_args(catalog, out, feature_extractor="keras"))).validate()
    with pytest.raises(ValueError, match="--feature_model file not found"):
        config_from_args(
            build_parser().parse_args(
                small_args(catalog, out, feature_extractor="keras", feature_model=str(tmp_path / "absent.keras"))
            )
        ).validate()


def test_preprocessing_writes_the_models_features(tmp_path):
    from PIL import Image

    root = str(tmp_path)
    catalog, products = make_catalog(root, num_products=4, splits=["train", "test"])
    path = os.path.join(root, "cnn.keras")
    model = _save_model(path)
    out = os.path.join(root, "out")
    argv = small_args(
        catalog,
        out,
        feature_extractor="keras",
        feature_model=path,
        task="finetune",
        feature_dtype="float32",
        foreground="none",
    )
    assert preprocess_main(argv) == 0
    assert json.load(open(os.path.join(out, "summary.json")))["feature_extractor"]["name"] == "keras"
    rows = list(make_tfrecord_dataset(os.path.join(out, "finetune", "train"), 64, False).as_numpy_iterator())[0]
    assert len(rows["prod_img_id"]) == 2  # the two train products, one image each
    images = {p["product_id"]: p["images"][0] for p in products}
    generator = KaleidoPatchGenerator(crop_size=16)  # no foreground box: the whole image
    for prod_img_id, feature in zip(rows["prod_img_id"][:, 0], rows["img_feature_convert_rotation"]):
        product = prod_img_id.decode().split("_")[0] if prod_img_id.decode() not in images else prod_img_id.decode()
        image = Image.open(os.path.join(root, images[product])).convert("RGB")
        crop = generator(image).crop(0)[None].astype(np.float32) / 255.0  # the level-1 patch, [1, 16, 16, 3]
        np.testing.assert_allclose(feature, np.asarray(model(crop))[0], rtol=1e-4, atol=1e-5)


def test_retraining_the_model_in_place_changes_the_fingerprint(tmp_path):
    catalog, _ = make_catalog(str(tmp_path), num_products=2)
    path = str(tmp_path / "cnn.keras")
    argv = small_args(catalog, str(tmp_path / "out"), feature_extractor="keras", feature_model=path)
    _save_model(path, seed=0)
    before = config_from_args(build_parser().parse_args(argv)).fingerprint()
    _save_model(path, seed=1)  # same architecture, so the same file size
    assert config_from_args(build_parser().parse_args(argv)).fingerprint() != before
