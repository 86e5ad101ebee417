"""Fresh image-text matching negatives in every batch (an input option; the original draws them once, offline).

    dataset = with_itm_negatives(make_tfrecord_dataset(path, batch, True, seed=0), rate=0.5, seed=0)

Each example of a batch, with probability `rate`, takes the text side (the text inputs and its masked-LM
targets) of another example of the same batch and becomes a negative (`nx_sent_labels` 0); the image side
stays. The other example is the one `shift` places further (mod B), `shift` drawn in [1, B) per batch. The
draws are stateless, keyed on (seed, batch index), so a resumed run that skips batches sees the same pairs.
When both `text_prod_id` and `image_prod_id` are in the batch, a pair that still shows one product keeps label 1;
without them (the pretraining schema) such a pair, two views of one product in one batch, is rare and
labelled 0.
"""

import tensorflow as tf

TEXT_SIDE = (
    "input_ids",
    "input_mask",
    "segment_ids",
    "masked_lm_positions",
    "masked_lm_ids",
    "masked_lm_weights",
    "text_prod_id",
    "prod_desc",
)


def roll_text_side(batch, swap, shift):
    """(new batch, source [B]): example i takes the text side of example source[i] = (i + shift) mod B where
    `swap` [B] is true, and keeps its own elsewhere; image side and labels unchanged."""
    size = tf.shape(batch["input_ids"])[0]
    source = (tf.range(size) + shift) % size  # [B]
    out = dict(batch)
    for key in TEXT_SIDE:
        if key in batch:
            value = batch[key]
            mask = tf.reshape(swap, tf.concat([[size], tf.ones([tf.rank(value) - 1], tf.int32)], 0))
            out[key] = tf.where(mask, tf.gather(value, source), value)
    return out, source


def swap_texts(batch, rate, seed):
    """One batch: `seed` is a stateless seed [2] (int32/int64). Returns the new batch dict."""
    size = tf.shape(batch["input_ids"])[0]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    swap = tf.random.stateless_uniform([size], seeds[0]) < rate  # [B]
    shift = tf.random.stateless_uniform([], seeds[1], minval=1, maxval=tf.maximum(size, 2), dtype=tf.int32)
    out, _ = roll_text_side(batch, swap, shift)
    labels = batch["nx_sent_labels"]  # [B, 1]
    if "text_prod_id" in batch and "image_prod_id" in batch:
        same = tf.equal(out["text_prod_id"][:, 0], batch["image_prod_id"][:, 0])  # [B]
        swapped_label = tf.cast(same, labels.dtype)[:, None]
    else:
        swapped_label = tf.zeros_like(labels)
    out["nx_sent_labels"] = tf.where(swap[:, None], swapped_label, labels)
    return out


def with_itm_negatives(dataset, rate, seed=0):
    """`dataset` (of batch dicts) with fresh in-batch negatives at `rate` in [0, 1]."""
    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"the ITM negative rate must be in [0, 1], got {rate}")
    if float(rate) == 0.0:
        return dataset
    base = tf.constant([int(seed), 0x17E6], tf.int64)

    def apply(index, batch):
        return swap_texts(batch, float(rate), base + tf.stack([tf.constant(0, tf.int64), index]))

    return dataset.enumerate().map(apply, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
