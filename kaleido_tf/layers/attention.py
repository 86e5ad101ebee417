"""BERT self-attention (B batch, S sequence, N heads, D head size, H = N * D)."""

import math

import keras
from keras import ops

from kaleido_tf.layers.core import dense


@keras.saving.register_keras_serializable(package="kaleido_tf")
class SelfAttention(keras.layers.Layer):
    """Multi-head self-attention with biased Q, K, V projections and an output projection.

    Args:
        hidden_size: model width H.
        num_attention_heads: N; H must be divisible by N.
        attention_probs_dropout_prob: dropout rate on the attention probabilities.
        initializer_range: stddev of the truncated-normal initialiser.
        fused_qkv: compute Q, K and V with one [H, 3H] matmul over the concatenated kernels (same weights,
            same variables; fewer, larger matmuls).
    """

    def __init__(
        self,
        hidden_size,
        num_attention_heads,
        attention_probs_dropout_prob=0.1,
        initializer_range=0.02,
        fused_qkv=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"hidden_size ({hidden_size}) must be a multiple of num_attention_heads ({num_attention_heads})"
            )
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.initializer_range = initializer_range
        self.fused_qkv = fused_qkv
        self.head_size = hidden_size // num_attention_heads

    def build(self, input_shape=None):
        shape = (None, None, self.hidden_size)
        self.query = dense(self.hidden_size, "query", self.initializer_range, dtype=self.dtype_policy)
        self.key = dense(self.hidden_size, "key", self.initializer_range, dtype=self.dtype_policy)
        self.value = dense(self.hidden_size, "value", self.initializer_range, dtype=self.dtype_policy)
        self.output_dense = dense(self.hidden_size, "output_dense", self.initializer_range, dtype=self.dtype_policy)
        for layer in (self.query, self.key, self.value, self.output_dense):
            layer.build(shape)
        self.dropout = keras.layers.Dropout(
            self.attention_probs_dropout_prob, name="attention_probs_dropout", dtype=self.dtype_policy
        )
        self.built = True

    def _project_qkv(self, x):
        # x: [B, S, H] -> three [B, S, N, D]
        if self.fused_qkv:
            kernel = ops.concatenate([self.query.kernel, self.key.kernel, self.value.kernel], axis=1)  # [H, 3H]
            bias = ops.concatenate([self.query.bias, self.key.bias, self.value.bias], axis=0)  # [3H]
            qkv = ops.matmul(x, ops.cast(kernel, x.dtype)) + ops.cast(bias, x.dtype)  # [B, S, 3H]
            q, k, v = ops.split(qkv, 3, axis=-1)
        else:
            q, k, v = self.query(x), self.key(x), self.value(x)  # [B, S, H] each
        new_shape = (ops.shape(x)[0], ops.shape(x)[1], self.num_attention_heads, self.head_size)
        return ops.reshape(q, new_shape), ops.reshape(k, new_shape), ops.reshape(v, new_shape)

    def _project_partial(self, x, num_queries):
        # Queries for the first Q positions only; keys and values for all S: [B, Q, N, D], two [B, S, N, D].
        batch, seq = ops.shape(x)[0], ops.shape(x)[1]
        q = ops.reshape(self.query(x[:, :num_queries]), (batch, num_queries, self.num_attention_heads, self.head_size))
        kv_shape = (batch, seq, self.num_attention_heads, self.head_size)
        return q, ops.reshape(self.key(x), kv_shape), ops.reshape(self.value(x), kv_shape)

    def call(self, x, attention_bias=None, training=False, num_queries=None):
        # x: [B, S, H]; attention_bias: additive, broadcastable to [B, N, S, S]
        # num_queries: attend from the first Q positions only (to all S keys) and return [B, Q, H]; the rows
        # computed are those of the full call.
        if num_queries is None:
            q, k, v = self._project_qkv(x)  # [B, S, N, D]
        else:
            q, k, v = self._project_partial(x, num_queries)  # [B, Q, N, D], [B, S, N, D], [B, S, N, D]
            if attention_bias is not None and attention_bias.shape[2] != 1:
                attention_bias = attention_bias[:, :, :num_queries]  # a full mask: its first Q query rows
        scores = ops.einsum("bsnd,btnd->bnst", q, k)  # [B, N, S, S] ([B, N, Q, S])
        scores = scores * (1.0 / math.sqrt(self.head_size))
        if attention_bias is not None:
            scores = scores + ops.cast(attention_bias, scores.dtype)
        # Softmax in float32 even under a mixed-precision policy.
        probs = ops.cast(ops.softmax(ops.cast(scores, "float32"), axis=-1), x.dtype)  # [B, N, S, S]
        probs = self.dropout(probs, training=training)
        context = ops.einsum("bnst,btnd->bsnd", probs, v)  # [B, S, N, D]
        context = ops.reshape(context, (ops.shape(q)[0], ops.shape(q)[1], self.hidden_size))  # [B, S, H]
        return self.output_dense(context)

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_size=self.hidden_size,
            num_attention_heads=self.num_attention_heads,
            attention_probs_dropout_prob=self.attention_probs_dropout_prob,
            initializer_range=self.initializer_range,
            fused_qkv=self.fused_qkv,
        )
        return config
