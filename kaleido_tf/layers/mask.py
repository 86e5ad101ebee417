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


def seq2seq_attention_mask(input_mask, num_patches):
    """The captioning mask of a single-stream sequence laid out as [text T | patches N], S = T + N.

    Patches attend to every patch and to no text; text position i attends to every patch and to the text
    positions j <= i whose `input_mask` is 1 (no caption token sees a later one).

    input_mask: [B, T] (1 = real token) -> mask [B, S, S] int32, 1 = the query (row) may attend to the key.
    """
    input_mask = ops.cast(input_mask, "int32")
    batch_size, text_length = ops.shape(input_mask)[0], ops.shape(input_mask)[1]
    text_pos = ops.arange(text_length)
    causal = ops.cast(ops.expand_dims(text_pos, 1) >= ops.expand_dims(text_pos, 0), "int32")  # [T, T]
    text_to_text = ops.expand_dims(causal, 0) * ops.expand_dims(input_mask, 1)  # [B, T, T]
    text_to_patch = ops.ones((batch_size, text_length, num_patches), "int32")  # [B, T, N]
    patch_to_text = ops.zeros((batch_size, num_patches, text_length), "int32")  # [B, N, T]
    patch_to_patch = ops.ones((batch_size, num_patches, num_patches), "int32")  # [B, N, N]
    text_rows = ops.concatenate([text_to_text, text_to_patch], axis=2)  # [B, T, S]
    patch_rows = ops.concatenate([patch_to_text, patch_to_patch], axis=2)  # [B, N, S]
    return ops.concatenate([text_rows, patch_rows], axis=1)  # [B, S, S]
