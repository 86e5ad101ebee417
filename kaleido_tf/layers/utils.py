"""Tensor helpers with shape legends (B batch, T text length, S sequence, P gathered positions, H hidden)."""

from keras import ops


def gather_indexes(sequence, positions):
    """Gathers rows of each example: [B, S, H] at [B, P] -> [B * P, H] (the original's flat layout)."""
    hidden = ops.shape(sequence)[-1]
    picked = ops.take_along_axis(sequence, ops.expand_dims(ops.cast(positions, "int32"), -1), axis=1)  # [B, P, H]
    return ops.reshape(picked, (-1, hidden))  # [B * P, H]


# Tables up to this many rows are read with a one-hot matmul, larger ones with a gather.
ONE_HOT_MAX_ROWS = 64


def masked_one_hot_rows(table, ids):
    """Looks up rows of a small table the way a one-hot matmul does: out-of-range ids give zeros.

    The original multiplies one_hot(ids, rows) by the table, so an id >= rows (or < 0) yields a zero vector
    instead of an error (ORIGINAL.md quirk 1). Small tables (the 2 to 6 segment types) keep the one-hot matmul:
    the values are exactly the table rows, and its gradient is a matmul too, where a gather's gradient is a
    scatter-add of every token into the same one or two rows (serialised atomics on GPUs). Larger tables use a
    gather plus a mask, which gives the same values without a matmul over the table.
    table: [R, H]; ids: [...] -> [..., H]
    """
    rows = table.shape[0]
    ids = ops.cast(ids, "int32")
    if rows is not None and rows <= ONE_HOT_MAX_ROWS:
        one_hot = ops.one_hot(ids, rows, dtype=table.dtype)  # [..., R]; all zeros for an id outside [0, R)
        return ops.einsum("...r,rh->...h", one_hot, table)
    rows = ops.shape(table)[0]
    valid = ops.logical_and(ids >= 0, ids < rows)
    safe = ops.where(valid, ids, ops.zeros_like(ids))
    picked = ops.take(table, safe, axis=0)  # [..., H]
    return picked * ops.cast(ops.expand_dims(valid, -1), picked.dtype)
