"""Small building blocks shared by every Kaleido-BERT layer: initialisers, dense and LayerNorm factories."""

import keras

# The original normalises with tf.contrib.layers.layer_norm, whose epsilon is fixed at 1e-12.
LAYER_NORM_EPSILON = 1e-12


def get_initializer(initializer_range=0.02, seed=None):
    """Truncated normal (cut at two standard deviations), the initialiser of every original weight."""
    return keras.initializers.TruncatedNormal(stddev=initializer_range, seed=seed)


def layer_norm(name, dtype=None):
    """LayerNorm over the last axis with the original epsilon."""
    return keras.layers.LayerNormalization(axis=-1, epsilon=LAYER_NORM_EPSILON, name=name, dtype=dtype)


def dense(units, name, initializer_range=0.02, activation=None, use_bias=True, dtype=None):
    """A Dense layer initialised as the original initialises its dense layers."""
    return keras.layers.Dense(
        units,
        activation=activation,
        use_bias=use_bias,
        kernel_initializer=get_initializer(initializer_range),
        bias_initializer="zeros",
        name=name,
        dtype=dtype,
    )
