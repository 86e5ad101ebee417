"""TransformerLayer and Encoder: the shared layer checks, post-LayerNorm outputs, the partial last block, the stack."""

import numpy as np
import tensorflow as tf

from kaleido_tf.layers import MASK_ADDER, Encoder, TransformerLayer
from tests.harness import run_layer_test

B, S, H, N, INNER = 2, 6, 8, 2, 12
BLOCK = {
    "hidden_size": H,
    "num_attention_heads": N,
    "intermediate_size": INNER,
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "initializer_range": 0.5,
    "activation": "gelu",
}


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.normal(size=(B, S, H)).astype(np.float32))
    bias = tf.constant(rng.choice([0.0, MASK_ADDER], size=(B, 1, S, S), p=[0.7, 0.3]).astype(np.float32))
    return x, bias


def test_transformer_layer_checks(tmp_path):
    x, bias = _inputs()
    _, output = run_layer_test(
        TransformerLayer,
        BLOCK,
        x,
        (B, S, H),
        tmp_path,
        call_kwargs={"attention_bias": bias},
        expected_num_trainable_weights=16,  # attention 8, two LayerNorms 4, two dense 4
    )
    # Post-LayerNorm with gamma 1 and beta 0: every output row has mean 0 and variance 1.
    out = output.numpy()
    np.testing.assert_allclose(out.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.var(-1), 1.0, atol=1e-4)


def test_transformer_layer_with_one_query_is_row_0_of_the_full_call():
    x, bias = _inputs(1)
    layer = TransformerLayer(**BLOCK)
    full = layer(x, attention_bias=bias).numpy()
    first = layer(x, attention_bias=bias, num_queries=1).numpy()
    assert first.shape == (B, 1, H)
    np.testing.assert_allclose(first[:, 0], full[:, 0], atol=1e-5, rtol=0)


def test_encoder_checks_and_equals_its_blocks_in_turn(tmp_path):
    x, bias = _inputs(2)
    kwargs = dict(BLOCK, num_hidden_layers=3)
    encoder, output = run_layer_test(
        Encoder, kwargs, x, (B, S, H), tmp_path, call_kwargs={"attention_bias": bias}, expected_num_trainable_weights=48
    )
    assert [block.name for block in encoder.blocks] == ["layer_0", "layer_1", "layer_2"]
    assert encoder.layer_1 is encoder.blocks[1]  # also an attribute: checkpoints track attributes
    y = x
    for block in encoder.blocks:
        y = block(y, attention_bias=bias)
    np.testing.assert_allclose(output.numpy(), y.numpy(), atol=1e-6, rtol=0)
    # Each block is built from the encoder's settings, under the same names.
    block_config = encoder.blocks[0].get_config()
    for name, value in BLOCK.items():
        assert block_config[name] == value, name
