"""The demo's patch-feature CNN: trained on the train split's crops, saved standardised, read by preprocessing."""

import json
import os

import numpy as np
import pytest

from kaleido_tf.demo.catalog import generate_catalog
from kaleido_tf.demo.patch_cnn import catalog_crops, train_patch_cnn
from kaleido_tf.preprocessors.feature_extractor import build_feature_extractor


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("patch_cnn")
    generate_catalog(str(root / "catalog"), num_products=24, views_per_product=1, image_size=48, seed=0)
    return str(root / "catalog" / "catalog.jsonl")


def test_crops_carry_their_products_labels(catalog):
    crops, labels, classes = catalog_crops(catalog, 16)
    records = [json.loads(line) for line in open(catalog, encoding="utf-8")]
    train = [r for r in records if r["split"] == "train"]
    assert crops.shape == (55 * sum(len(r["images"]) for r in train), 16, 16, 3) and crops.dtype == np.uint8
    assert labels.shape == (len(crops), 3)
    assert classes == {
        "subcategory": len({r["subcategory"] for r in records}),
        "colour": len({r["attributes"]["colour"] for r in records}),
        "pattern": len({r["attributes"]["pattern"] for r in records}),
    }
    subcategories = sorted({r["subcategory"] for r in records})
    first = train[0]
    assert (labels[:55, 0] == subcategories.index(first["subcategory"])).all()
    assert len({tuple(row) for row in labels[:55]}) == 1  # every crop of an image carries its product's labels


def test_crops_name_the_catalog_line_of_a_record_without_labels(tmp_path):
    path = tmp_path / "catalog.jsonl"
    path.write_text(
        json.dumps({"product_id": "a", "images": [], "text": "x", "subcategory": "s", "attributes": {"colour": "red"}})
        + "\n"
    )
    with pytest.raises(ValueError, match=r"catalog.jsonl:1: .*pattern"):
        catalog_crops(str(path), 16)


def test_trained_feature_model_is_saved_standardised_with_the_layout(catalog, tmp_path):
    crops, _, _ = catalog_crops(catalog, 16)
    path = str(tmp_path / "cnn.keras")
    accuracies = train_patch_cnn(catalog, path, crop_size=16, feature_size=16, layout_grid=4, epochs=1)
    assert set(accuracies) == {"subcategory", "colour", "pattern"}
    assert all(0.0 <= value <= 1.0 for value in accuracies.values())
    assert os.path.isfile(path) and not [n for n in os.listdir(tmp_path) if n.endswith(".tmp.keras")]
    extractor = build_feature_extractor("keras", crop_size=16, feature_size=16 + 48, feature_model=path)
    features = extractor(crops)  # [N, 16 CNN + 4 * 4 * 3 layout]
    assert features.shape == (len(crops), 64)
    live = features.std(axis=0) > 1e-3  # CNN dimensions a ReLU left dead stay constant
    assert live[16:].all() and live[:16].sum() >= 4
    np.testing.assert_allclose(features.mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(features.std(axis=0)[live], 1.0, atol=1e-2)
    # The layout part is the crop averaged over 4 x 4 pixel blocks, standardised per dimension.
    pooled = crops.astype(np.float64).reshape(-1, 4, 4, 4, 4, 3).mean(axis=(2, 4)).reshape(len(crops), 48) / 255.0
    expected = (pooled - pooled.mean(axis=0)) / pooled.std(axis=0)
    np.testing.assert_allclose(features[:, 16:], expected, atol=1e-3)


def test_layout_grid_must_divide_the_crop(catalog, tmp_path):
    with pytest.raises(ValueError, match="layout_grid 5 must divide crop_size 16"):
        train_patch_cnn(catalog, str(tmp_path / "cnn.keras"), crop_size=16, layout_grid=5)
