"""Attention masks."""

from keras import ops

# The original adds (1 - mask) * -10000 to the attention scores.
MASK_ADDER = -10000.0


def attention_bias_from_key_mask(key_mask, dtype="float32"):
    """Key mask [B, S] (1 = attend, 0 = ignore) -> additive bias [B, 1, 1, S], same for every query and head."""
    key_mask = ops.cast(key_mask, dtype)
    return ops.reshape((1.0 - key_mask) * MASK_ADDER, (ops.shape(key_mask)[0], 1, 1, -1))  # [B, 1, 1, S]


def attention_bias_from_mask(mask, dtype="float32"):
    """Full mask [B, S_q, S_k] (1 = attend) -> additive bias [B, 1, S_q, S_k] (e.g. seq2seq masks)."""
    mask = ops.cast(mask, dtype)
    return ops.expand_dims((1.0 - mask) * MASK_ADDER, 1)  # [B, 1, S_q, S_k]
