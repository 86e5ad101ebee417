"""Activation functions used by Kaleido-BERT."""

import math

import keras
from keras import ops

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


@keras.saving.register_keras_serializable(package="kaleido_tf")
def gelu_tanh(x):
    """GELU with the tanh approximation, as BERT and Kaleido-BERT compute it.

    gelu(x) = 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))
    """
    cdf = 0.5 * (1.0 + ops.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * ops.power(x, 3))))
    return x * cdf


def get_activation(name):
    """Resolves an activation by name; "gelu" means the tanh approximation, as in the original."""
    if callable(name):
        return name
    table = {"gelu": gelu_tanh, "gelu_tanh": gelu_tanh, "gelu_new": gelu_tanh}
    if name in table:
        return table[name]
    return keras.activations.get(name)
