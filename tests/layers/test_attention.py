"""SelfAttention: the shared layer checks, a NumPy reference, masked keys and the partial (first-Q-rows) call."""

import numpy as np
import pytest
import tensorflow as tf

from kaleido_tf.layers import MASK_ADDER, SelfAttention
from tests.harness import run_layer_test

B, S, H, N = 2, 5, 8, 2
KWARGS = {"hidden_size": H, "num_attention_heads": N, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.5}


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.normal(size=(B, S, H)).astype(np.float32))
    key_mask = np.ones((B, S), np.float32)
    key_mask[0, 3] = key_mask[1, 1] = 0.0
    bias = tf.constant(((1.0 - key_mask) * MASK_ADDER).reshape(B, 1, 1, S))  # [B, 1, 1, S]
    return x, bias, key_mask


def _reference(layer, x, key_mask):
    """Plain NumPy multi-head attention from the layer's weights."""

    def proj(dense, v):
        return v @ dense.kernel.numpy() + dense.bias.numpy()

    def heads(v):  # [B, S, H] -> [B, N, S, D]
        return v.reshape(B, -1, N, H // N).transpose(0, 2, 1, 3)

    q, k, v = (heads(proj(d, x)) for d in (layer.query, layer.key, layer.value))
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(H // N) + ((1.0 - key_mask) * MASK_ADDER)[:, None, None, :]
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    context = (probs @ v).transpose(0, 2, 1, 3).reshape(B, -1, H)
    return proj(layer.output_dense, context)


def test_self_attention_layer_checks(tmp_path):
    x, bias, key_mask = _inputs()
    layer, output = run_layer_test(
        SelfAttention,
        KWARGS,
        x,
        (B, S, H),
        tmp_path,
        call_kwargs={"attention_bias": bias},
        expected_num_trainable_weights=8,  # Q, K, V, output: kernel and bias each
    )
    np.testing.assert_allclose(output.numpy(), _reference(layer, x.numpy(), key_mask), atol=1e-5, rtol=0)


def test_a_masked_key_gets_no_attention():
    x, bias, _ = _inputs()
    layer = SelfAttention(**KWARGS)
    before = layer(x, attention_bias=bias).numpy()
    # Replace the masked keys' inputs with anything: every other row stays as it was.
    noise = np.random.default_rng(5).normal(size=(B, S, H)).astype(np.float32) * 10
    changed = x.numpy().copy()
    changed[0, 3], changed[1, 1] = noise[0, 3], noise[1, 1]
    after = layer(tf.constant(changed), attention_bias=bias).numpy()
    keep = [(0, r) for r in range(S) if r != 3] + [(1, r) for r in range(S) if r != 1]
    for b, r in keep:
        np.testing.assert_allclose(after[b, r], before[b, r], atol=1e-6, rtol=0, err_msg=f"row {b}, {r}")
    # Unmasked, the same change moves the other rows.
    unmasked = layer(tf.constant(changed)).numpy()
    assert np.abs(unmasked[0, 0] - layer(x).numpy()[0, 0]).max() > 1e-3


def test_num_queries_gives_the_first_rows_and_fused_qkv_the_same_values():
    x, _, _ = _inputs()
    rng = np.random.default_rng(3)
    full_bias = tf.constant(rng.choice([0.0, MASK_ADDER], size=(B, 1, S, S), p=[0.7, 0.3]).astype(np.float32))
    layer = SelfAttention(**KWARGS)
    full = layer(x, attention_bias=full_bias).numpy()
    part = layer(x, attention_bias=full_bias, num_queries=2).numpy()
    assert part.shape == (B, 2, H)
    np.testing.assert_allclose(part, full[:, :2], atol=1e-6, rtol=0)
    fused = SelfAttention(**KWARGS, fused_qkv=True)
    fused(x)
    fused.set_weights(layer.get_weights())
    np.testing.assert_allclose(fused(x, attention_bias=full_bias).numpy(), full, atol=1e-5, rtol=0)


def test_heads_must_divide_the_width():
    with pytest.raises(ValueError, match="multiple of num_attention_heads"):
        SelfAttention(hidden_size=10, num_attention_heads=4)
