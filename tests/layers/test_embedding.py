"""TextEmbedding and PatchEmbedding: the shared layer checks, NumPy references, out-of-range type ids (quirk 1)."""

import numpy as np
import tensorflow as tf

from kaleido_tf.layers import LAYER_NORM_EPSILON, PatchEmbedding, TextEmbedding
from tests.harness import run_layer_test

B, T, H, V = 2, 5, 8, 30
n, F = 4, 6


def _layer_norm(x):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(x.var(-1, keepdims=True) + LAYER_NORM_EPSILON)


def test_text_embedding_checks_and_reference(tmp_path):
    rng = np.random.default_rng(0)
    ids = tf.constant(rng.integers(0, V, (B, T)).astype(np.int32))
    segments = tf.constant([[0, 0, 1, 1, 1], [0, 1, 1, 0, 0]], tf.int32)
    kwargs = {
        "vocab_size": V,
        "hidden_size": H,
        "max_position_embeddings": 16,
        "type_vocab_size": 2,
        "hidden_dropout_prob": 0.1,
        "initializer_range": 0.5,
    }
    layer, output = run_layer_test(
        TextEmbedding, kwargs, (ids, segments), (B, T, H), tmp_path, expected_num_trainable_weights=5
    )
    words = layer.word_embeddings.numpy()
    types = layer.token_type_embeddings.numpy()
    positions = layer.position_embeddings.numpy()
    want = _layer_norm(words[ids.numpy()] + types[segments.numpy()] + positions[None, :T])
    np.testing.assert_allclose(output.numpy(), want, atol=1e-5, rtol=0)
    # A segment id outside the table adds no type embedding (the original's one-hot matmul).
    outside = tf.constant(np.full((B, T), 2, np.int32))
    np.testing.assert_allclose(
        layer(ids, outside).numpy(), _layer_norm(words[ids.numpy()] + positions[None, :T]), atol=1e-5, rtol=0
    )


def _patch_inputs(seed=0):
    rng = np.random.default_rng(seed)
    features = tf.constant(rng.normal(size=(B, n, F)).astype(np.float32))
    positions = tf.constant(rng.normal(size=(B, n, H)).astype(np.float32))
    return features, positions


PATCH = {
    "num_patches": n,
    "patch_feature_size": F,
    "hidden_size": H,
    "patch_type_vocab_size": 3,
    "default_segment_id": 2,
    "hidden_dropout_prob": 0.1,
    "initializer_range": 0.5,
}


def test_patch_embedding_checks_and_reference(tmp_path):
    features, positions = _patch_inputs()
    segments = tf.constant([[0, 1, 2, 2], [1, 1, 0, 2]], tf.int32)
    layer, output = run_layer_test(
        PatchEmbedding,
        PATCH,
        (features, positions),
        (B, n, H),
        tmp_path,
        call_kwargs={"segment_ids": segments},
        expected_num_trainable_weights=4,  # projector, type table, LayerNorm gamma and beta
    )
    projector, types = layer.projector.numpy(), layer.type_embeddings.numpy()
    want = _layer_norm(features.numpy() @ projector + types[segments.numpy()] + positions.numpy())
    np.testing.assert_allclose(output.numpy(), want, atol=1e-5, rtol=0)
    # No segment ids: every patch takes default_segment_id.
    np.testing.assert_allclose(
        layer(features, positions).numpy(),
        _layer_norm(features.numpy() @ projector + types[2] + positions.numpy()),
        atol=1e-5,
        rtol=0,
    )


def test_patch_embedding_out_of_range_segment_adds_no_type_embedding():
    """ORIGINAL.md quirk 1: with the class default patch_type_vocab_size 2, levels 2 to 5 (ids 2..5) get none."""
    features, positions = _patch_inputs(1)
    layer = PatchEmbedding(**dict(PATCH, patch_type_vocab_size=2, default_segment_id=4))
    got = layer(features, positions).numpy()
    np.testing.assert_allclose(
        got, _layer_norm(features.numpy() @ layer.projector.numpy() + positions.numpy()), atol=1e-5, rtol=0
    )
    # The table is still read (a zero gradient, not a missing one), so weight decay keeps applying to it.
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(features, positions) * features[..., :1])
    grad = tape.gradient(loss, layer.type_embeddings)
    assert grad is not None and not np.any(tf.convert_to_tensor(grad).numpy())
