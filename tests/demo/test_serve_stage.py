"""The demo's serve stage: the kaleido-serve command line it records in summary.json["serve"], and the
image-only inputs its classifiers are finetuned on."""

import os

import numpy as np
import tensorflow as tf

from kaleido_tf.apps.serve.cli import build_parser
from kaleido_tf.demo.serve_stage import CATALOG_INDEX, image_only, serve_arguments


def test_serve_arguments_name_the_demo_folders_and_parse_as_kaleido_serve_flags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = serve_arguments("out")
    flags = build_parser().parse_args(args)
    out = os.path.join(str(tmp_path), "out")
    assert flags.export_dir == os.path.join(out, "export")
    assert flags.index_dir == os.path.join(out, CATALOG_INDEX) != os.path.join(out, "index")
    assert flags.catalog == os.path.join(out, "catalog", "catalog.jsonl")
    assert flags.host == "127.0.0.1"  # the demo's page stays on loopback
    assert all(os.path.isabs(a) for a in args if not a.startswith("--"))


def test_image_only_replaces_the_text_by_the_prefix_and_keeps_the_image():
    features = {
        "input_ids": tf.constant([[2, 17, 9, 3, 0, 0], [2, 8, 3, 0, 0, 0]], tf.int64),
        "input_mask": tf.constant([[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]], tf.int64),
        "segment_ids": tf.constant([[0, 0, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0]], tf.int64),
        "img_feature_convert_rotation": tf.constant([[0.5, -1.0], [2.0, 3.0]]),
    }
    out = image_only(features, [2, 3])
    np.testing.assert_array_equal(out["input_ids"], [[2, 3, 0, 0, 0, 0]] * 2)
    np.testing.assert_array_equal(out["input_mask"], [[1, 1, 0, 0, 0, 0]] * 2)
    np.testing.assert_array_equal(out["segment_ids"], np.zeros((2, 6)))
    assert out["input_ids"].dtype == tf.int64 and out["input_mask"].dtype == tf.int64
    np.testing.assert_array_equal(out["img_feature_convert_rotation"], features["img_feature_convert_rotation"])
