"""tools/raw_image_parity.py on a tiny preprocessed catalog: the numbers it reports are the real differences.

The tiny catalog uses the pixels extractor (a colour histogram: one grey level that crosses a bin moves a
feature by a histogram step, see test_raw_signatures.py), so features are bounded here by that extractor's
tolerance; boxes, positions and the stored features must match as for any extractor.
"""

import importlib.util
import os

import numpy as np
import pytest

from kaleido_tf.export.image_inputs import ImagePathSettings

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
def prep(tiny_catalog):
    """The tool's image-path numbers on the preprocessed tiny catalog (tests/export/conftest.py)."""
    out = tiny_catalog["dir"]
    examples, ids, files = parity.held_out(out, tiny_catalog["catalog"], split="train")
    settings = ImagePathSettings.from_preprocess_dir(out)
    result, blobs = parity.image_path_parity(settings, files, examples)
    return {"dir": out, "examples": examples, "ids": ids, "result": result, "blobs": blobs}


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


def test_export_numbers(prep, raw_export, tiny_catalog, monkeypatch):
    examples, blobs = prep["examples"], prep["blobs"]
    # The tiny classifier and pretraining model exported with the raw signatures of this preprocessing: the
    # exports tests/export/conftest.py shares (export_saved_model as export_with_raw calls it, top_k aside).
    classifier = raw_export("classifier")
    classes = parity.classifier_parity(classifier["model"], classifier["loaded"], examples, blobs)
    assert set(classes) == {"classify_image", "classify_raw"}
    for r in classes.values():
        assert r["agreement"] == 1.0
        assert 0.0 <= r["prob_max_abs_diff"] <= 1e-3
    pretrain = raw_export("pretrain")
    calls = []

    def shared_export(model, export_dir, **kwargs):
        calls.append((model, str(export_dir), kwargs))
        return pretrain["path"]

    monkeypatch.setattr("kaleido_tf.export.export_saved_model", shared_export)
    loaded = parity.export_with_raw(pretrain["model"], "unused", prep["dir"], tiny_catalog["vocab"])
    assert calls == [
        (
            pretrain["model"],
            "unused",
            dict(vocab_file=tiny_catalog["vocab"], label_map=None, image_path=prep["dir"], overwrite=True),
        )
    ]
    itm = parity.itm_parity(loaded, examples, blobs)
    assert set(itm) == {"own text", "another product's text"}
    for r in itm.values():
        assert 0.0 <= r["prob_max_abs_diff"] <= 1e-3
