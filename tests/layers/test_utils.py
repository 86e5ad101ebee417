"""Layer helpers against NumPy: gather_indexes, the attention biases, the activation table.

(masked_one_hot_rows is checked against NumPy in tests/perf/test_speedups.py, beside its speed reason.)
"""

import numpy as np
import pytest

from kaleido_tf.layers import (
    MASK_ADDER,
    attention_bias_from_key_mask,
    attention_bias_from_mask,
    gather_indexes,
    gelu_tanh,
    get_activation,
)


def test_gather_indexes_is_the_flat_row_gather():
    sequence = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)
    positions = np.array([[4, 0, 4], [1, 3, 2]])
    got = np.asarray(gather_indexes(sequence, positions))
    want = np.concatenate([sequence[0, [4, 0, 4]], sequence[1, [1, 3, 2]]])  # [B * P, H]
    np.testing.assert_array_equal(got, want)


def test_attention_biases():
    key_mask = np.array([[1, 0, 1], [0, 0, 1]])
    bias = np.asarray(attention_bias_from_key_mask(key_mask))
    assert bias.shape == (2, 1, 1, 3)
    np.testing.assert_array_equal(bias[:, 0, 0], (1 - key_mask) * MASK_ADDER)
    full = np.array([[[1, 0], [1, 1]]])
    bias = np.asarray(attention_bias_from_mask(full, "bfloat16"))
    assert bias.shape == (1, 1, 2, 2) and str(bias.dtype) == "bfloat16"
    adder = float(np.array(MASK_ADDER, bias.dtype))  # -9984: the nearest bfloat16, still a mask
    np.testing.assert_array_equal(bias[0, 0].astype(np.float32), [[0.0, adder], [0.0, 0.0]])


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "gelu_new"])
def test_gelu_means_the_tanh_approximation(name):
    x = np.linspace(-4, 4, 17).astype(np.float32)
    want = 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))
    assert get_activation(name) is gelu_tanh
    np.testing.assert_allclose(np.asarray(gelu_tanh(x)), want, atol=1e-6, rtol=0)
