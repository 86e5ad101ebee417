"""kaleido-preprocess --image_path graph: the same outputs as the PIL path within the stated tolerance."""

import os

import numpy as np
import pytest

from kaleido_tf.datasets.tfrecord_reader import make_tfrecord_dataset
from kaleido_tf.preprocessors.cli import build_parser, config_from_args
from kaleido_tf.preprocessors.config import PreprocessConfig
from kaleido_tf.preprocessors.feature_extractor import build_feature_extractor
from kaleido_tf.preprocessors.graph_extractor import GraphCropExtractor
from kaleido_tf.preprocessors.pipeline import Preprocessor
from kaleido_tf.preprocessors.text_tokenizer import build_tokenizer
from tests.preprocessors.factory import make_catalog, small_args


def _load(directory):
    batches = list(make_tfrecord_dataset(directory, batch_size=512, training=False).as_numpy_iterator())
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def test_graph_crop_extractor_matches_pixels_extractor():
    extractor = build_feature_extractor("pixels", crop_size=16, feature_size=8, seed=0)
    crops = np.random.default_rng(0).integers(0, 256, (70, 16, 16, 3), dtype=np.uint8)
    graph = GraphCropExtractor(extractor, batch_size=32)
    expected = extractor(crops)
    np.testing.assert_allclose(graph(crops), expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_image_path_graph_gives_the_pil_outputs(tmp_path):
    catalog, _ = make_catalog(str(tmp_path), num_products=6, images_per_product=1, splits=["train"])
    tokenizer = build_tokenizer("wordpiece")
    outs = {}
    for path in ("pil", "graph"):
        out = str(tmp_path / path)
        args = small_args(catalog, out, task="pretrain", feature_dtype="float32", image_path=path)
        config = config_from_args(build_parser().parse_args(args))
        assert config.image_path == path
        Preprocessor(config, tokenizer=tokenizer).run()
        outs[path] = _load(os.path.join(out, "pretrain/train"))
    # Patch features (and the feature targets of the masked levels) within float32 summation-order noise;
    # positions, labels, ids and text identical.
    float_keys = [k for k in outs["pil"] if outs["pil"][k].dtype.kind == "f" and "position" not in k]
    assert any("feature" in k for k in float_keys)
    for key in outs["pil"]:
        a, b = outs["pil"][key], outs["graph"][key]
        if key in float_keys:
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-5 * max(1.0, np.abs(a).max()), err_msg=key)
        else:
            np.testing.assert_array_equal(b, a, err_msg=key)


def test_mixed_bfloat16_needs_the_graph_path(tmp_path):
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text("")
    with pytest.raises(ValueError, match="--mixed_bfloat16 needs --image_path graph"):
        PreprocessConfig(catalog=str(catalog), output_dir="o", mixed_bfloat16=True).validate()
    with pytest.raises(ValueError, match="applies to the resnet50 extractor"):
        GraphCropExtractor(build_feature_extractor("pixels", crop_size=16, feature_size=8), mixed_bfloat16=True)


def test_fingerprint_unchanged_for_the_pil_path_and_changed_by_the_graph_path():
    import hashlib
    import json

    from kaleido_tf.preprocessors.config import _NOT_IN_FINGERPRINT

    base = PreprocessConfig(catalog="c", output_dir="o")
    # The fingerprint as computed before the two settings existed: outputs written then stay valid.
    items = {k: v for k, v in base.to_dict().items() if k not in _NOT_IN_FINGERPRINT | {"image_path", "mixed_bfloat16"}}
    before = hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]
    assert base.fingerprint() == before
    assert PreprocessConfig(catalog="c", output_dir="o", image_path="graph").fingerprint() != before
