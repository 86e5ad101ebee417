"""Strict TF1 checkpoint conversion: the name table, every failure named, atomic output, the CLI."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import kaleido_tf
from kaleido_tf.convert import CheckpointError, CheckpointMismatchError, tf1_to_keras_name
from kaleido_tf.model_zoo.tf1_conversion import convert_tf1_checkpoint
from tests.core import tf1_reference as ref
from tests.core.conftest import golden_dir, golden_features, load_golden

TINY = os.path.join(golden_dir("tiny"), "model.ckpt-0")


def _tiny_cfg():
    return json.load(open(os.path.join(golden_dir("tiny"), "config.json")))


def _checkpoint(tmp_path, weights, extra=None):
    shutil.copy(os.path.join(golden_dir("tiny"), "config.json"), tmp_path / "config.json")
    return ref.write_tf1_checkpoint(str(tmp_path / "model.ckpt-0"), weights, extra=extra)


def test_every_golden_variable_is_mapped_or_skipped():
    lines = open(os.path.join(golden_dir("tiny"), "variables.txt")).read().split("\n")
    names = [line.split("\t")[0] for line in lines if line]
    model = kaleido_tf.from_pretrained(TINY)
    report = model.load_report
    assert len(report.assigned) == 75 == len(model.weights)
    assert {name for name, _ in report.not_used} == {"catepred_dense/kernel", "catepred_dense/bias"}
    assert len(report.assigned) + len(report.not_used) + len(report.skipped) == len(names)
    # The two misspelt names of the original map onto the right heads.
    assert (
        tf1_to_keras_name("kaleido_bert_pre_trained_model/cls/img_jigsaw/jiasaw_output_weights")
        == "jigsaw_head/output_weights"
    )
    assert (
        tf1_to_keras_name("kaleido_bert_pre_trained_model/cls/img_blankmask/blanmask_output_weights")
        == "blankmask_head/output_weights"
    )
    # Without the prefix too; substrings never match.
    assert tf1_to_keras_name("bert/pooler/dense/kernel") == "bert/pooler/kernel"
    assert tf1_to_keras_name("xbert/pooler/dense/kernel") is None
    assert tf1_to_keras_name("bert/pooler/dense/kernel_extra") is None


def test_missing_extra_and_misshaped_variables_are_each_named(tmp_path):
    weights = ref.random_weights(_tiny_cfg(), seed=1)
    del weights["bert/encoder/layer_1/output/dense/bias"]
    weights["bert/pooler/dense/kernel"] = np.zeros((32, 31), np.float32)
    extra = {
        "kaleido_bert_pre_trained_model/bert/encoder/layer_7/output/dense/bias": np.zeros(32, np.float32),
        "kaleido_bert_pre_trained_model/bert/mystery": np.zeros(3, np.float32),
    }
    prefix = _checkpoint(tmp_path, weights, extra)
    with pytest.raises(CheckpointMismatchError) as info:
        kaleido_tf.from_pretrained(prefix)
    message = str(info.value)
    assert "missing   : model variable bert/encoder/layer_1/output_dense/bias" in message
    assert (
        "unused    : checkpoint variable kaleido_bert_pre_trained_model/bert/encoder/layer_7/output/dense/bias"
        in message
    )
    assert "unmatched : checkpoint variable kaleido_bert_pre_trained_model/bert/mystery" in message
    assert (
        "shape     : kaleido_bert_pre_trained_model/bert/pooler/dense/kernel is [32, 31] in the checkpoint, [32, 32]"
        in message
    )
    assert info.value.missing and info.value.unexpected and info.value.unmatched and info.value.mismatched


def test_config_that_does_not_match_the_checkpoint(tmp_path):
    prefix = _checkpoint(tmp_path, ref.random_weights(_tiny_cfg(), seed=1))
    cfg = _tiny_cfg()
    cfg["num_hidden_layers"] = 3
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointMismatchError, match="missing   : model variable bert/encoder/layer_2/"):
        kaleido_tf.from_pretrained(prefix)


def test_absent_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.ckpt-9.index does not exist"):
        kaleido_tf.from_pretrained(str(tmp_path / "model.ckpt-9"))
    with pytest.raises(FileNotFoundError, match="no checkpoint in directory"):
        kaleido_tf.from_pretrained(str(tmp_path))
    for part in ("index", "data-00000-of-00001"):
        broken = tmp_path / part
        broken.mkdir()
        for f in os.listdir(golden_dir("tiny")):
            shutil.copy(os.path.join(golden_dir("tiny"), f), broken / f)
        target = broken / f"model.ckpt-0.{part}"
        target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])
        with pytest.raises(CheckpointError, match=f"cannot read checkpoint {broken}"):
            kaleido_tf.from_pretrained(str(broken / "model.ckpt-0"))
    nocfg = tmp_path / "nocfg"
    nocfg.mkdir()
    for f in ("model.ckpt-0.index", "model.ckpt-0.data-00000-of-00001"):
        shutil.copy(os.path.join(golden_dir("tiny"), f), nocfg / f)
    with pytest.raises(FileNotFoundError, match="config.json not found beside the checkpoint"):
        kaleido_tf.from_pretrained(str(nocfg / "model.ckpt-0"))


def test_convert_then_load_gives_identical_outputs(tmp_path):
    out = tmp_path / "converted"
    report = convert_tf1_checkpoint(TINY, str(out))
    assert len(report.assigned) == 77  # 75 + the category head
    assert json.load(open(out / "kaleido_tf.json"))["finetune_heads"] == {"catepred_dense": 48}
    golden = load_golden("tiny")
    feats = golden_features(golden)
    model = kaleido_tf.from_pretrained(str(out))
    np.testing.assert_allclose(model(feats)["mlm_logits"], golden["eval/mlm_logits"], atol=1e-5, rtol=0)
    classifier = kaleido_tf.from_pretrained(str(out), task="catepred")
    np.testing.assert_allclose(
        classifier.head(golden["eval/pooled_output"]), golden["finetune/catepred_logits"], atol=1e-5, rtol=0
    )
    fresh = kaleido_tf.from_pretrained(str(out), task="subcatepred")  # no such head: announced, initialised
    assert fresh.load_report.initialised == ["subcatepred_dense/bias", "subcatepred_dense/kernel"]
    assert fresh.num_classes == 122


def test_failed_conversion_leaves_the_old_output(tmp_path):
    out = tmp_path / "converted"
    convert_tf1_checkpoint(TINY, str(out))
    before = sorted(os.listdir(out))
    weights = ref.random_weights(_tiny_cfg(), seed=1)
    del weights["bert/position_dense"]
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    prefix = _checkpoint(bad_dir, weights)
    with pytest.raises(CheckpointMismatchError):
        convert_tf1_checkpoint(prefix, str(out))
    assert sorted(os.listdir(out)) == before
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []  # no temporary left behind


def test_cli(tmp_path):
    out = tmp_path / "cli"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-m", "kaleido_tf.apps.convert_main", f"--tf1_checkpoint={TINY}", f"--output_dir={out}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "load  kaleido_bert_pre_trained_model/cls/img_jigsaw/jiasaw_output_weights" in done.stdout
    assert "77 loaded, 0 not used by this model, 0 initialised, 153 skipped" in done.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "kaleido_tf.apps.convert_main",
            f"--tf1_checkpoint={tmp_path}/nothing",
            f"--output_dir={out}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert bad.returncode == 2 and "kaleido-convert: error:" in bad.stderr and "Traceback" not in bad.stderr
