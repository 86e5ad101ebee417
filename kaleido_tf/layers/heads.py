"""Pretraining heads: masked LM, image-text matching, patch classification and patch reconstruction.

One class serves the three patch classification tasks (rotation, jigsaw, camouflage) and one the two
reconstruction tasks (grey mask, blank mask).
"""

import keras
from keras import ops

from kaleido_tf.layers.activations import get_activation
from kaleido_tf.layers.core import dense, get_initializer, layer_norm
from kaleido_tf.layers.utils import gather_indexes


@keras.saving.register_keras_serializable(package="kaleido_tf")
class MLMHead(keras.layers.Layer):
    """Masked-LM head: dense + GELU, LayerNorm, then logits against the (tied) word table plus a bias.

    Call with the text part of the sequence, the masked positions and the word table [V, H].
    """

    def __init__(self, vocab_size, hidden_size, initializer_range=0.02, activation="gelu", **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.initializer_range = initializer_range
        self.activation = activation

    def build(self, input_shape=None):
        self.transform_dense = dense(
            self.hidden_size,
            "transform_dense",
            self.initializer_range,
            activation=get_activation(self.activation),
            dtype=self.dtype_policy,
        )
        self.transform_dense.build((None, self.hidden_size))
        self.transform_layer_norm = layer_norm("transform_LayerNorm", dtype=self.dtype_policy)
        self.transform_layer_norm.build((None, self.hidden_size))
        self.output_bias = self.add_weight(name="output_bias", shape=(self.vocab_size,), initializer="zeros")
        self.built = True

    def call(self, text_sequence, masked_positions, word_embeddings):
        # text_sequence: [B, T, H]; masked_positions: [B, P]; word_embeddings: [V, H]
        x = gather_indexes(text_sequence, masked_positions)  # [B * P, H]
        x = self.transform_layer_norm(self.transform_dense(x))
        logits = ops.matmul(x, ops.transpose(ops.cast(word_embeddings, x.dtype)))  # [B * P, V]
        return logits + ops.cast(self.output_bias, logits.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            initializer_range=self.initializer_range,
            activation=self.activation,
        )
        return config


@keras.saving.register_keras_serializable(package="kaleido_tf")
class PatchClassificationHead(keras.layers.Layer):
    """Classifies a whole level from its flattened outputs: [B, n, H] -> [B, n * H] @ W[labels, n * H]^T + b.

    With num_patches=1 on the pooled output this is also the image-text matching (ITM/NSP) head.
    """

    def __init__(self, num_patches, hidden_size, num_labels, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.num_patches = num_patches
        self.hidden_size = hidden_size
        self.num_labels = num_labels
        self.initializer_range = initializer_range

    def build(self, input_shape=None):
        self.output_weights = self.add_weight(
            name="output_weights",
            shape=(self.num_labels, self.num_patches * self.hidden_size),
            initializer=get_initializer(self.initializer_range),
        )
        self.output_bias = self.add_weight(name="output_bias", shape=(self.num_labels,), initializer="zeros")
        self.built = True

    def call(self, level_sequence):
        # level_sequence: [B, n, H] or [B, H]
        flat = ops.reshape(level_sequence, (-1, self.num_patches * self.hidden_size))  # [B, n * H]
        logits = ops.matmul(flat, ops.transpose(ops.cast(self.output_weights, flat.dtype)))  # [B, labels]
        return logits + ops.cast(self.output_bias, logits.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_patches=self.num_patches,
            hidden_size=self.hidden_size,
            num_labels=self.num_labels,
            initializer_range=self.initializer_range,
        )
        return config


@keras.saving.register_keras_serializable(package="kaleido_tf")
class PatchReconstructionHead(keras.layers.Layer):
    """Predicts the features of masked patches: gather [B, n, H] at [B, k] -> [B * k, H] @ W[H, F] (no bias)."""

    def __init__(self, hidden_size, patch_feature_size, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.patch_feature_size = patch_feature_size
        self.initializer_range = initializer_range

    def build(self, input_shape=None):
        self.output_weights = self.add_weight(
            name="output_weights",
            shape=(self.hidden_size, self.patch_feature_size),
            initializer=get_initializer(self.initializer_range),
        )
        self.built = True

    def call(self, level_sequence, masked_ids):
        # level_sequence: [B, n, H]; masked_ids: [B, k]
        picked = gather_indexes(level_sequence, masked_ids)  # [B * k, H]
        return ops.matmul(picked, ops.cast(self.output_weights, picked.dtype))  # [B * k, F]

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_size=self.hidden_size,
            patch_feature_size=self.patch_feature_size,
            initializer_range=self.initializer_range,
        )
        return config
