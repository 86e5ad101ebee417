"""Classifier export through the kaleido-export CLI: classify / classify_text signatures and label maps."""

import contextlib
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import kaleido_tf
from kaleido_tf.export import cli
from kaleido_tf.export.label_map import class_names
from tests.export.conftest import (
    TEXTS,
    TINY_CHECKPOINT,
    expected_text_inputs,
    export_info,
    golden_features,
    load_golden,
    signature_inputs,
    write_vocab,
)


def _run_cli(args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(args)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    root = tmp_path_factory.mktemp("classifier")
    model = kaleido_tf.from_pretrained(TINY_CHECKPOINT, task="catepred")
    features = {k: v for k, v in golden_features(load_golden()).items() if k != "img_blank_lm_ids"}
    predicted = np.argmax(model(features, training=False)["logits"], axis=-1)
    # Name every predicted class and a few others; the remaining ids keep their default names.
    label_map = {f"category_{int(i)}": int(i) for i in sorted(set(predicted.tolist()))}
    free = [i for i in range(48) if i not in label_map.values()]
    label_map.update({"dress": free[0], "skirt": free[-1]})
    label_path = root / "labels.json"
    label_path.write_text(json.dumps(label_map))
    export_dir = root / "serving"
    code, out, err = _run_cli(
        [
            "--model",
            TINY_CHECKPOINT,
            "--task",
            "catepred",
            "--export_dir",
            str(export_dir),
            "--vocab_file",
            str(write_vocab(root / "vocab.txt")),
            "--label_map",
            str(label_path),
        ]
    )
    assert code == 0, err
    path = out.strip().splitlines()[-1]
    assert path == str(export_dir / "1")
    return {
        "root": root,
        "path": path,
        "model": model,
        "features": features,
        "label_map": label_map,
        "loaded": tf.saved_model.load(path),
    }


def test_classify_equals_keras(classifier):
    keras_logits = classifier["model"](classifier["features"], training=False)["logits"].numpy()
    names = {i: n for n, i in classifier["label_map"].items()}
    for signature_name in ("classify", "serving_default"):
        signature = classifier["loaded"].signatures[signature_name]
        out = signature(**signature_inputs(signature, classifier["features"]))
        np.testing.assert_allclose(out["logits"], keras_logits, atol=1e-5, rtol=0)
        np.testing.assert_allclose(out["probabilities"], tf.nn.softmax(keras_logits), atol=1e-6, rtol=0)
        np.testing.assert_allclose(np.sum(out["probabilities"], axis=-1), 1.0, atol=1e-6)
        ids = np.argmax(keras_logits, axis=-1)
        np.testing.assert_array_equal(out["class_id"], ids)
        assert out["class_id"].dtype == tf.int64 and out["class_name"].dtype == tf.string
        assert [n.decode() for n in out["class_name"].numpy()] == [names[i] for i in ids]


def test_export_info_and_default_names(classifier):
    info = export_info(classifier["path"])
    assert info["task"] == "catepred" and info["default_signature"] == "classify"
    assert sorted(info["signatures"]) == ["classify", "classify_text", "embed", "tokenize"]
    assert info["signatures"]["classify"]["outputs"]["probabilities"]["shape"] == [-1, 48]
    names = info["class_names"]
    assert len(names) == 48
    for name, i in classifier["label_map"].items():
        assert names[i] == name
    unnamed = [i for i in range(48) if i not in classifier["label_map"].values()]
    assert unnamed and all(names[i] == f"class_{i}" for i in unnamed)


def test_classify_text_equals_classify_on_ids(classifier):
    rows = [0, 1, 2, 0]
    patches = {k: v[rows] for k, v in classifier["features"].items() if k.startswith("img_")}
    text_signature = classifier["loaded"].signatures["classify_text"]
    from_text = text_signature(**signature_inputs(text_signature, dict(patches, text=np.array(TEXTS, object))))
    ids_signature = classifier["loaded"].signatures["classify"]
    from_ids = ids_signature(**signature_inputs(ids_signature, dict(patches, **expected_text_inputs())))
    np.testing.assert_allclose(from_text["probabilities"], from_ids["probabilities"], atol=1e-6, rtol=0)
    np.testing.assert_array_equal(from_text["class_name"], from_ids["class_name"])
    keras_logits = classifier["model"](dict(patches, **expected_text_inputs()), training=False)["logits"]
    np.testing.assert_allclose(from_text["logits"], keras_logits, atol=1e-5, rtol=0)


def test_classifier_embed(classifier):
    signature = classifier["loaded"].signatures["embed"]
    out = signature(**signature_inputs(signature, classifier["features"]))
    keras_out = classifier["model"](classifier["features"], training=False)
    np.testing.assert_allclose(out["pooled_output"], keras_out["pooled_output"], atol=1e-5, rtol=0)


def test_label_map_errors(tmp_path):
    assert class_names(None, 3) == ["class_0", "class_1", "class_2"]
    assert class_names({"shoe": 2}, 3) == ["class_0", "class_1", "shoe"]
    for entries, message in [
        ({"shoe": 3}, "label_map: id 3 of class 'shoe' is outside [0, 3)"),
        ({"shoe": 1, "boot": 1}, "label_map: classes 'shoe' and 'boot' share id 1"),
        ({"shoe": "1"}, "label_map: id of class 'shoe' must be an integer, got '1'"),
        ({"": 0}, "label_map: class name '' must be a non-empty string"),
    ]:
        with pytest.raises(ValueError) as info:
            class_names(entries, 3)
        assert message in str(info.value)
    path = tmp_path / "labels.json"
    path.write_text('{\n  "shoe": 1,\n  "boot" 2\n}\n')
    with pytest.raises(ValueError, match=r"labels\.json: not valid JSON \(line 3, column 10"):
        class_names(path, 3)
    path.write_text('[["shoe", 1]]')
    with pytest.raises(ValueError, match=r"labels\.json: expected a JSON object"):
        class_names(path, 3)
    with pytest.raises(FileNotFoundError, match="label map not found"):
        class_names(tmp_path / "absent.json", 3)


def test_cli_errors_leave_the_export_alone(classifier, tmp_path):
    export_dir = os.path.dirname(classifier["path"])
    bad = tmp_path / "labels.json"
    bad.write_text(json.dumps({"shoe": 99}))
    code, _, err = _run_cli(
        ["--model", TINY_CHECKPOINT, "--task", "catepred", "--export_dir", export_dir, "--label_map", str(bad)]
    )
    assert code == 2 and f"{bad}: id 99 of class 'shoe' is outside [0, 48)" in err
    code, _, err = _run_cli(
        [
            "--model",
            TINY_CHECKPOINT,
            "--task",
            "catepred",
            "--export_dir",
            export_dir,
            "--version",
            "1",
            "--no-text_signatures",
        ]
    )
    assert code == 2 and "version 1 already exists" in err
    code, _, err = _run_cli(["--model", TINY_CHECKPOINT, "--export_dir", export_dir, "--version", "x1"])
    assert code == 2 and "version must be a non-negative integer, got 'x1'" in err
    assert os.listdir(export_dir) == ["1"]
