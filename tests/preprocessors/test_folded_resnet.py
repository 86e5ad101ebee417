"""FoldedResNet50: the Keras ResNet-50 with BatchNormalization folded in, float32 and bfloat16."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kaleido_tf.preprocessors.feature_extractor import build_feature_extractor
from kaleido_tf.preprocessors.folded_resnet import FoldedResNet50
from kaleido_tf.preprocessors.graph_extractor import GraphCropExtractor
from kaleido_tf.preprocessors.resnet_extractor import BGR_MEAN


@pytest.fixture(scope="module")
def extractor():
    """A crop-32 ResNet-50 extractor whose BatchNormalizations are not the identity (the folding matters)."""
    extractor = build_feature_extractor("resnet50", crop_size=32, feature_size=2048, seed=3, batch_size=8)
    rng = np.random.default_rng(7)
    for layer in extractor.model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, n))
            layer.beta.assign(rng.normal(0.0, 0.2, n))
            layer.moving_mean.assign(rng.normal(0.0, 0.2, n))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n))
    return extractor


@pytest.fixture(scope="module")
def crops():
    return np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)


def test_float32_equals_the_keras_model(extractor, crops):
    expected = extractor(crops)  # the offline path: Keras model, caffe transform, BN at inference
    folded = FoldedResNet50(extractor.model, BGR_MEAN, "float32")
    out = tf.function(folded.__call__, autograph=False)(tf.constant(crops)).numpy()
    assert out.dtype == np.float32 and out.shape == (6, 2048)
    scale = np.abs(expected).max()
    assert scale > 0.1  # BN made the features non-trivial
    # float32 rounding of a folded product against two steps (measured 1e-6 of the scale)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5 * scale)


def test_bfloat16_within_its_mantissa_and_float32_out(extractor, crops):
    expected = extractor(crops)
    out = FoldedResNet50(extractor.model, BGR_MEAN, "bfloat16")(tf.constant(crops)).numpy()
    assert out.dtype == np.float32
    relative = np.linalg.norm(out - expected) / np.linalg.norm(expected)
    # bfloat16 keeps 8 mantissa bits (2^-8 = 3.9e-3 per rounding); measured 3e-3 to 5e-3 over the 53 convolutions
    assert 1e-4 < relative < 2e-2
    # still the same features: each crop's nearest offline feature vector is its own
    distances = np.linalg.norm(out[:, None] - expected[None], axis=-1)
    assert (distances.argmin(axis=1) == np.arange(len(crops))).all()


def test_graph_crop_extractor_runs_the_folded_network(extractor, crops):
    expected = extractor(crops)
    graph = GraphCropExtractor(extractor, batch_size=4)  # 6 crops: one full batch and one padded
    np.testing.assert_allclose(graph(crops), expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    fast = GraphCropExtractor(extractor, batch_size=4, mixed_bfloat16=True)
    assert np.linalg.norm(fast(crops) - expected) / np.linalg.norm(expected) < 2e-2


def test_refuses_a_model_that_is_not_resnet50():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv1_conv")(inputs)
    x = keras.layers.BatchNormalization(name="conv1_bn")(x)
    x = keras.layers.Conv2D(4, 3, name="other_conv")(x)
    with pytest.raises(ValueError, match="conv2_block1_0_conv"):
        FoldedResNet50(keras.Model(inputs, x), BGR_MEAN)
    with pytest.raises(ValueError, match="compute_dtype"):
        FoldedResNet50(keras.Model(inputs, x), BGR_MEAN, "float16")


def test_mixed_bfloat16_warns_on_a_cpu_without_bfloat16_units(extractor, monkeypatch, caplog):
    from kaleido_tf.preprocessors import graph_extractor

    monkeypatch.setattr(graph_extractor, "has_native_bfloat16", lambda: False)
    with caplog.at_level("WARNING", logger=graph_extractor.__name__):
        GraphCropExtractor(extractor, batch_size=4, mixed_bfloat16=True)
        GraphCropExtractor(extractor, batch_size=4)  # float32: nothing to say
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "this CPU has no bfloat16 units" in warnings[0], warnings
    monkeypatch.setattr(graph_extractor, "has_native_bfloat16", lambda: None)  # unknown (not Linux): silent
    caplog.clear()
    with caplog.at_level("WARNING", logger=graph_extractor.__name__):
        GraphCropExtractor(extractor, batch_size=4, mixed_bfloat16=True)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
