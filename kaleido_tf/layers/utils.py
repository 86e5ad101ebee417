"""Tensor helpers with shape legends (B batch, T text length, S sequence, P gathered positions, H hidden)."""

from keras import ops


def gather_indexes(sequence, positions):
    """Gathers rows of each example: [B, S, H] at [B, P] -> [B * P, H] (the original's flat layout)."""
    hidden = ops.shape(sequence)[-1]
    picked = ops.take_along_axis(sequence, ops.expand_dims(ops.cast(positions, "int32"), -1), axis=1)  # [B, P, H]
    return ops.reshape(picked, (-1, hidden))  # [B * P, H]


def masked_one_hot_rows(table, ids):
    """Looks up rows of a small table the way a one-hot matmul does: out-of-range ids give zeros.

    The original multiplies one_hot(ids, rows) by the table, so an id >= rows (or < 0) yields a zero vector
    instead of an error (ORIGINAL.md quirk 1). A gather plus a mask gives the same values without the matmul.
    table: [R, H]; ids: [...] -> [..., H]
    """
    rows = ops.shape(table)[0]
    ids = ops.cast(ids, "int32")
    valid = ops.logical_and(ids >= 0, ids < rows)
    safe = ops.where(valid, ids, ops.zeros_like(ids))
    picked = ops.take(table, safe, axis=0)  # [..., H]
    return picked * ops.cast(ops.expand_dims(valid, -1), picked.dtype)
