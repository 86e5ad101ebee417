"""Fresh in-batch ITM negatives: which texts move, the labels, determinism."""

import numpy as np
import pytest
import tensorflow as tf

from kaleido_tf.datasets import with_itm_negatives
from kaleido_tf.datasets.itm_negatives import swap_texts


def _batch(size=6, with_ids=False):
    ids = np.arange(size * 4, dtype=np.int64).reshape(size, 4) + 10  # row i: text i
    batch = {
        "input_ids": ids,
        "input_mask": np.ones_like(ids),
        "segment_ids": np.zeros_like(ids),
        "masked_lm_ids": ids[:, :2] + 1000,
        "masked_lm_positions": np.tile([[1, 2]], (size, 1)),
        "masked_lm_weights": np.ones((size, 2), np.float32),
        "img_feature_convert_rotation": np.arange(size, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32),
        "nx_sent_labels": np.ones((size, 1), np.int64),
    }
    if with_ids:
        products = [b"a", b"b", b"a", b"c", b"d", b"e"][:size]
        batch["text_prod_id"] = np.array(products, dtype=object)[:, None]
        batch["image_prod_id"] = np.array(products, dtype=object)[:, None]
    return {k: tf.constant(v) for k, v in batch.items()}


def test_every_text_moves_at_rate_one_and_images_stay():
    batch = _batch()
    out = swap_texts(batch, 1.0, tf.constant([3, 4], tf.int64))
    text_rows = (out["input_ids"].numpy()[:, 0] - 10) // 4  # which text each row now holds (row i: 10 + 4i)
    shift = text_rows[0]
    assert 1 <= shift <= 5
    np.testing.assert_array_equal(text_rows, (np.arange(6) + shift) % 6)  # one roll for the whole batch
    np.testing.assert_array_equal(out["masked_lm_ids"].numpy(), batch["masked_lm_ids"].numpy()[text_rows])
    np.testing.assert_array_equal(
        out["img_feature_convert_rotation"].numpy(), batch["img_feature_convert_rotation"].numpy()
    )
    assert out["nx_sent_labels"].numpy().ravel().tolist() == [0] * 6


def test_rate_zero_changes_nothing_and_rate_is_checked():
    dataset = tf.data.Dataset.from_tensors(_batch())
    out = next(iter(with_itm_negatives(dataset, 0.0)))
    np.testing.assert_array_equal(out["input_ids"].numpy(), _batch()["input_ids"].numpy())
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\], got 1.5"):
        with_itm_negatives(dataset, 1.5)


def test_product_ids_keep_a_pair_of_one_product_positive():
    batch = _batch(with_ids=True)  # rows 0 and 2 are both product "a"
    for seed in range(40):
        out = swap_texts(batch, 1.0, tf.constant([seed, 0], tf.int64))
        text_rows = (out["input_ids"].numpy()[:, 0] - 10) // 4
        products = [b"a", b"b", b"a", b"c", b"d", b"e"]
        expected = [int(products[t] == products[i]) for i, t in enumerate(text_rows)]
        assert out["nx_sent_labels"].numpy().ravel().tolist() == expected
        if text_rows[0] == 2:  # shift 2: row 0 reads row 2's text, same product
            assert expected[0] == 1


def test_seeded_and_keyed_on_the_batch_index():
    dataset = tf.data.Dataset.from_tensors(_batch()).repeat(200)
    first = [b["input_ids"].numpy() for b in with_itm_negatives(dataset, 0.5, seed=1)]
    again = [b["input_ids"].numpy() for b in with_itm_negatives(dataset, 0.5, seed=1)]
    other = [b["input_ids"].numpy() for b in with_itm_negatives(dataset, 0.5, seed=2)]
    assert all((a == b).all() for a, b in zip(first, again))
    assert any((a != b).any() for a, b in zip(first, other))
    assert any((a != first[0]).any() for a in first[1:])  # batches differ from one another
    # skipping batches (a resumed run) gives the same later batches
    skipped = [b["input_ids"].numpy() for b in with_itm_negatives(dataset, 0.5, seed=1).skip(150)]
    assert all((a == b).all() for a, b in zip(first[150:], skipped))
    moved = np.mean([(a[:, 0] != _batch()["input_ids"].numpy()[:, 0]).mean() for a in first])
    assert 0.4 < moved < 0.6  # about `rate` of the examples take another text
