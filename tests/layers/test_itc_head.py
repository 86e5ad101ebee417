"""ITCHead: the shared layer checks, a NumPy reference, the clipped temperature and mixed precision."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kaleido_tf.layers.itc_head import ITCHead
from tests.harness import run_layer_test

B, H, D = 3, 8, 4


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return tuple(tf.constant(rng.normal(size=(B, H)).astype(np.float32)) for _ in range(2))


def test_itc_head_checks_and_reference(tmp_path):
    text, image = _inputs()
    kwargs = {"hidden_size": H, "embedding_size": D, "temperature": 0.07, "initializer_range": 0.5}
    # The embeddings are float32 under every policy (checked below), so the harness' bfloat16 check is off.
    layer, out = run_layer_test(
        ITCHead,
        kwargs,
        (text, image),
        {"text_embedding": (B, D), "image_embedding": (B, D), "temperature": ()},
        tmp_path,
        expected_num_trainable_weights=5,
        run_precision=False,
    )
    for key, x, proj in (
        ("text_embedding", text, layer.text_projection),
        ("image_embedding", image, layer.image_projection),
    ):
        y = x.numpy() @ proj.kernel.numpy() + proj.bias.numpy()
        want = y / np.linalg.norm(y, axis=-1, keepdims=True)
        np.testing.assert_allclose(out[key].numpy(), want, atol=1e-6, rtol=0)
        np.testing.assert_allclose(np.linalg.norm(out[key].numpy(), axis=-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(float(out["temperature"]), 0.07, rtol=1e-7)


def test_temperature_is_clipped_as_albef():
    layer = ITCHead(H, embedding_size=D)
    layer(*_inputs())
    layer.temperature_variable.assign(5.0)
    np.testing.assert_allclose(float(layer.clipped_temperature()), 0.5)
    layer.temperature_variable.assign(-1.0)
    np.testing.assert_allclose(float(layer.clipped_temperature()), 0.001, rtol=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        ITCHead(H, temperature=0.9)


def test_mixed_precision_keeps_float32_embeddings():
    layer = ITCHead(H, embedding_size=D, dtype="mixed_bfloat16")
    out = layer(*_inputs())
    assert layer.text_projection.compute_dtype == "bfloat16"
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in layer.weights)
    assert out["text_embedding"].dtype == tf.float32 and out["image_embedding"].dtype == tf.float32
    np.testing.assert_allclose(np.linalg.norm(out["image_embedding"].numpy(), axis=-1), 1.0, atol=1e-6)
