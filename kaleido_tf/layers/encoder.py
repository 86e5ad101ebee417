"""Post-LayerNorm BERT encoder blocks and the encoder stack."""

import keras

from kaleido_tf.layers.activations import get_activation
from kaleido_tf.layers.attention import SelfAttention
from kaleido_tf.layers.core import dense, layer_norm

# The arguments of one TransformerLayer: an Encoder takes them too and passes them on to each of its blocks.
BLOCK_ARGS = (
    "hidden_size",
    "num_attention_heads",
    "intermediate_size",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "initializer_range",
    "activation",
    "fused_qkv",
)


def block_args(layer):
    """The BLOCK_ARGS of `layer` (a TransformerLayer or an Encoder), by name."""
    return {name: getattr(layer, name) for name in BLOCK_ARGS}


@keras.saving.register_keras_serializable(package="kaleido_tf")
class TransformerLayer(keras.layers.Layer):
    """One BERT block: attention, dropout, residual, LayerNorm; GELU feed-forward, dropout, residual, LayerNorm."""

    def __init__(
        self,
        hidden_size,
        num_attention_heads,
        intermediate_size,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        initializer_range=0.02,
        activation="gelu",
        fused_qkv=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.initializer_range = initializer_range
        self.activation = activation
        self.fused_qkv = fused_qkv

    def build(self, input_shape=None):
        shape = (None, None, self.hidden_size)
        policy = self.dtype_policy
        self.attention = SelfAttention(
            self.hidden_size,
            self.num_attention_heads,
            attention_probs_dropout_prob=self.attention_probs_dropout_prob,
            initializer_range=self.initializer_range,
            fused_qkv=self.fused_qkv,
            name="attention",
            dtype=policy,
        )
        self.attention.build(shape)
        self.attention_layer_norm = layer_norm("attention_LayerNorm", dtype=policy)
        self.attention_layer_norm.build(shape)
        self.intermediate_dense = dense(
            self.intermediate_size,
            "intermediate_dense",
            self.initializer_range,
            activation=get_activation(self.activation),
            dtype=policy,
        )
        self.intermediate_dense.build(shape)
        self.output_dense = dense(self.hidden_size, "output_dense", self.initializer_range, dtype=policy)
        self.output_dense.build((None, None, self.intermediate_size))
        self.output_layer_norm = layer_norm("output_LayerNorm", dtype=policy)
        self.output_layer_norm.build(shape)
        self.attention_output_dropout = keras.layers.Dropout(
            self.hidden_dropout_prob, name="attention_output_dropout", dtype=self.dtype_policy
        )
        self.output_dropout = keras.layers.Dropout(
            self.hidden_dropout_prob, name="output_dropout", dtype=self.dtype_policy
        )
        self.built = True

    def call(self, x, attention_bias=None, training=False, num_queries=None):
        # x: [B, S, H]. num_queries: compute the block's output for the first Q positions only -> [B, Q, H]
        attended = self.attention(x, attention_bias=attention_bias, training=training, num_queries=num_queries)
        attended = self.attention_output_dropout(attended, training=training)
        if num_queries is not None:
            x = x[:, :num_queries]  # [B, Q, H]
        x = self.attention_layer_norm(attended + x)  # [B, S, H]
        hidden = self.intermediate_dense(x)  # [B, S, I]
        hidden = self.output_dense(hidden)  # [B, S, H]
        hidden = self.output_dropout(hidden, training=training)
        return self.output_layer_norm(hidden + x)

    def get_config(self):
        config = super().get_config()
        config.update(block_args(self))
        return config


@keras.saving.register_keras_serializable(package="kaleido_tf")
class Encoder(keras.layers.Layer):
    """A stack of `num_hidden_layers` TransformerLayer blocks named layer_0 ... layer_{L-1}."""

    def __init__(
        self,
        num_hidden_layers,
        hidden_size,
        num_attention_heads,
        intermediate_size,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        initializer_range=0.02,
        activation="gelu",
        fused_qkv=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_hidden_layers = num_hidden_layers
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.initializer_range = initializer_range
        self.activation = activation
        self.fused_qkv = fused_qkv

    def build(self, input_shape=None):
        self.blocks = []
        for i in range(self.num_hidden_layers):
            block = TransformerLayer(**block_args(self), name=f"layer_{i}", dtype=self.dtype_policy)
            block.build((None, None, self.hidden_size))
            # Also a named attribute: TensorFlow checkpoints track attributes, not Keras lists.
            setattr(self, f"layer_{i}", block)
            self.blocks.append(block)
        self.built = True

    def call(self, x, attention_bias=None, training=False, num_outputs=None):
        """x [B, S, H] -> [B, S, H]; with `num_outputs=Q` the last block computes only the first Q positions
        (e.g. Q = 1 when only the pooled position 0 is needed) and the result is [B, Q, H]."""
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            queries = num_outputs if i == last else None
            x = block(x, attention_bias=attention_bias, training=training, num_queries=queries)
        return x

    def get_config(self):
        config = super().get_config()
        config.update(num_hidden_layers=self.num_hidden_layers, **block_args(self))
        return config
