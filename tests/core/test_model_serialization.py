"""XLA compilation, get_config/from_config and .keras save/load keep the outputs."""

import os

import keras
import numpy as np
import tensorflow as tf

import kaleido_tf
from kaleido_tf.model_zoo import KaleidoBERTClassifier, KaleidoBERTPretrainModel
from tests.core.conftest import golden_dir, golden_features, load_golden


def _model_and_features():
    model = kaleido_tf.from_pretrained(os.path.join(golden_dir("tiny"), "model.ckpt-0"))
    feats = {k: tf.constant(v) for k, v in golden_features(load_golden("tiny")).items()}
    return model, feats


def test_jit_compile_gives_the_same_outputs():
    model, feats = _model_and_features()
    eager = model(feats, training=False)
    compiled = tf.function(lambda f: model(f, training=False), jit_compile=True)(feats)
    for key in eager:
        np.testing.assert_allclose(compiled[key], eager[key], atol=1e-5, rtol=0, err_msg=key)
    predict = tf.function(lambda f: model(f, training=False, mode="predict"), jit_compile=True)(feats)
    np.testing.assert_allclose(predict["blankmask_logits"], load_golden("tiny")["predict/blankmask_logits"], atol=1e-5)


def test_fused_qkv_keeps_the_outputs():
    model, feats = _model_and_features()
    fused = KaleidoBERTPretrainModel(model.config, fused_qkv=True)
    fused.build()
    fused.set_weights(model.get_weights())
    a, b = model(feats), fused(feats)
    for key in a:
        np.testing.assert_allclose(b[key], a[key], atol=1e-5, rtol=0, err_msg=key)


def test_get_config_round_trip():
    model, feats = _model_and_features()
    config = model.get_config()
    clone = KaleidoBERTPretrainModel.from_config(config)
    clone.build()
    assert clone.get_config() == config
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(feats)["nsp_logits"], model(feats)["nsp_logits"], atol=0, rtol=0)
    classifier = KaleidoBERTClassifier(model.config, task="subcatepred", num_classes=7)
    again = KaleidoBERTClassifier.from_config(classifier.get_config())
    assert again.get_config() == classifier.get_config() and again.num_classes == 7


def test_keras_save_and_load(tmp_path):
    model, feats = _model_and_features()
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, KaleidoBERTPretrainModel)
    a, b = model(feats), loaded(feats)
    for key in a:
        np.testing.assert_array_equal(b[key], a[key], err_msg=key)
    assert loaded.config == model.config
