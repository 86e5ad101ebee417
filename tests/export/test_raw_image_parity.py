"""tools/raw_image_parity.py on a tiny preprocessed catalog: the numbers it reports are the real differences.

The tiny catalog uses the pixels extractor (a colour histogram: one grey level that crosses a bin moves a
feature by a histogram step, see test_raw_signatures.py), so features are bounded here by that extractor's
tolerance; boxes, positions and the stored features must match as for any extractor.
"""

import importlib.util
import os

import numpy as np
import pytest

import kaleido_tf
from kaleido_tf.export.image_inputs import ImagePathSettings
from kaleido_tf.preprocessors.cli import build_parser, config_from_args
from kaleido_tf.preprocessors.pipeline import Preprocessor
from tests.export.conftest import TINY_CHECKPOINT, write_vocab
from tests.preprocessors.factory import make_catalog, small_args

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PIXELS_FEATURE_ATOL = 1e-2  # test_raw_signatures.py FEATURE_ATOL (absolute; the pixels extractor)


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        "raw_image_parity", os.path.join(ROOT, "tools", "raw_image_parity.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


parity = _load_tool()


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")
    vocab = write_vocab(str(root / "vocab.txt"))
    catalog, _ = make_catalog(str(root), num_products=6, images_per_product=1, splits=["train"])
    out = str(root / "prep")
    args = small_args(catalog, out, task="finetune", patch_feature_size=48, vocab=vocab)
    Preprocessor(config_from_args(build_parser().parse_args(args))).run()
    examples, ids, files = parity.held_out(out, catalog, split="train")
    settings = ImagePathSettings.from_preprocess_dir(out)
    result, blobs = parity.image_path_parity(settings, files, examples)
    return {
        "root": root,
        "dir": out,
        "vocab": vocab,
        "examples": examples,
        "ids": ids,
        "result": result,
        "blobs": blobs,
    }


def test_image_path_numbers(prep):
    r = prep["result"]
    assert r["images"] == len(prep["ids"]) == 6
    assert r["boxes_identical"] == r["positions_identical"] == 6
    assert r["crop_max_levels"] <= parity.CROP_MAX_LEVELS
    assert 0 <= r["crop_pixels_differing"] <= 0.05 * r["crop_pixels"]
    # The offline path recomputed here is what preprocessing stored (to the float16 storage step).
    assert r["offline_vs_stored_max_rel_diff"] <= parity.STORED_RTOL
    features = parity.stored_features(prep["examples"])
    assert features.shape == (6, 55, 48)
    assert r["feature_max_rel_diff"] * np.abs(features).max() <= PIXELS_FEATURE_ATOL


def test_export_numbers(prep):
    examples, blobs = prep["examples"], prep["blobs"]
    model = kaleido_tf.from_pretrained(TINY_CHECKPOINT, task="catepred")
    loaded = parity.export_with_raw(model, prep["root"] / "classifier", prep["dir"], prep["vocab"])
    classes = parity.classifier_parity(model, loaded, examples, blobs)
    assert set(classes) == {"classify_image", "classify_raw"}
    for r in classes.values():
        assert r["agreement"] == 1.0
        assert 0.0 <= r["prob_max_abs_diff"] <= 1e-3
    pretrain = kaleido_tf.from_pretrained(TINY_CHECKPOINT)
    loaded = parity.export_with_raw(pretrain, prep["root"] / "pretrain", prep["dir"], prep["vocab"])
    itm = parity.itm_parity(loaded, examples, blobs)
    assert set(itm) == {"own text", "another product's text"}
    for r in itm.values():
        assert 0.0 <= r["prob_max_abs_diff"] <= 1e-3
