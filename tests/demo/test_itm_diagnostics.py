"""The ITM controls: relabelling by hand, and a cross-modal interaction that the ITM head must learn."""

import numpy as np
import pytest
import tensorflow as tf

from kaleido_tf.demo import itm_diagnostics as diag
from kaleido_tf.model_zoo import registry
from kaleido_tf.model_zoo.kaleidobert_config import KaleidoBERTConfig
from tests.core.tf1_reference import random_features

TINY = dict(
    vocab_size=40,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    max_position_embeddings=16,
    type_vocab_size=2,
    patch_feature_size=8,
    patch_type_vocab_size=6,
    text_seq_len=8,
    img_camouflage_label_num=9,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def _batch():
    ids = tf.constant([[2, 7, 3, 0], [2, 9, 3, 0], [2, 7, 8, 3], [2, 5, 3, 0]], tf.int64)  # token 7: rows 0, 2
    image = tf.constant([[0.9] + [0.0] * 7, [0.1] + [0.0] * 7, [0.2] + [0.0] * 7, [0.8] + [0.0] * 7])
    return {
        "input_ids": ids,
        "input_mask": tf.ones_like(ids),
        "segment_ids": tf.zeros_like(ids),
        diag.IMAGE_KEY: image,
        "image_prod_id": tf.constant([[b"a"], [b"b"], [b"a"], [b"c"]]),
    }


@pytest.mark.parametrize(
    "control,expected",
    [
        # swap rows 1 and 3 with shift 1: row 1 reads row 2's text [2, 7, 8, 3], row 3 reads row 0's [2, 7, 3, 0]
        ("image", [1, 0, 0, 1]),  # image feature 0 > 0.5
        ("text", [1, 1, 1, 1]),  # token 7 in the (swapped) text
        ("xor", [0, 1, 1, 0]),
        ("match", [1, 0, 1, 0]),  # rows 1 (b vs a) and 3 (c vs a) are mismatched
    ],
)
def test_relabel_by_hand(control, expected):
    swap = tf.constant([False, True, False, True])
    out = diag.relabel(_batch(), control, swap, 1, text_token=7, image_threshold=0.5)
    assert out["nx_sent_labels"].numpy()[:, 0].tolist() == expected
    assert out["input_ids"].numpy()[1].tolist() == [2, 7, 8, 3]
    assert out["input_ids"].numpy()[3].tolist() == [2, 7, 3, 0]
    assert out["input_ids"].numpy()[0].tolist() == [2, 7, 3, 0]


def test_relabel_rejects_unknown_control():
    with pytest.raises(ValueError, match="control must be one of"):
        diag.relabel(_batch(), "colour", tf.constant([False] * 4), 1, 7, 0.5)


def test_balanced_bits_split_the_batch():
    token, threshold = diag.balanced_bits(_batch())
    assert token == 7  # in 2 of 4 texts
    assert threshold == pytest.approx(0.5)  # median of 0.9, 0.1, 0.2, 0.8


def _batches(config, size, seed):
    cfg = config.to_dict() if hasattr(config, "to_dict") else dict(vars(config))
    step = 0
    while True:
        features = random_features(cfg, size, seed + step)
        rng = np.random.default_rng(seed + step)
        ids = rng.integers(8, config.vocab_size, features["input_ids"].shape)  # [B, T] without token 7
        ids[rng.random(size) < 0.5, rng.integers(0, ids.shape[1])] = 7  # token 7 in about half of the texts
        features["input_ids"] = ids
        features["input_mask"][:] = 1  # every token visible, so the text bit is what the text shows
        rotation = features[diag.IMAGE_KEY]
        rotation[:, 0] = np.where(rotation[:, 0] > 0.5, 0.9, 0.1)  # a clear image bit
        features.pop("nx_sent_labels")
        yield {k: tf.constant(v) for k, v in features.items()}
        step += 1


def test_xor_of_an_image_bit_and_a_text_bit_is_learned():
    """Image information reaches the ITM head and combines with the text: a broken path (patches masked out,
    the pooled output reading the text alone) keeps this at chance."""
    tf.keras.utils.set_random_seed(0)
    config = KaleidoBERTConfig(**TINY)
    model = registry.build_model(config)
    history = diag.train_control(
        model, _batches(config, 32, 0), "xor", steps=300, learning_rate=2e-3, log_steps=25, log=lambda _: None
    )
    assert history[0][2] < 0.7  # chance at the start
    assert history[-1][2] > 0.95, history


def test_standardizer_gives_zero_mean_unit_variance_per_feature_dimension(tmp_path):
    from kaleido_tf.datasets import Schema, TFRecordShardWriter, shard_filename, write_schema_json

    levels = (("rotation", 1), ("jigsaw", 4), ("camouflage", 9), ("grey_mask", 16), ("blank_mask", 25))
    size = 3
    schema = Schema.parse(",".join(f"img_feature_convert_{name}:float:{n * size}" for name, n in levels))
    rng = np.random.default_rng(0)
    scale = np.array([1.0, 10.0, 0.1], np.float32)  # per feature dimension
    examples = [
        {
            f"img_feature_convert_{name}": (rng.normal(5.0, 1.0, (n, size)) * scale).astype(np.float32).ravel()
            for name, n in levels
        }
        for _ in range(40)
    ]
    with TFRecordShardWriter(tmp_path / shard_filename(0, 1), schema, feature_dtype="float32") as writer:
        for example in examples:
            writer.write(example)
    write_schema_json(tmp_path, schema, "float32", None, num_examples=len(examples), num_shards=1)

    apply = diag.standardizer(str(tmp_path), batch_size=16)
    batch = {k: tf.constant(np.stack([e[k] for e in examples])) for k in examples[0]}
    out = apply(batch)
    patches = np.concatenate([out[f"img_feature_convert_{name}"].numpy().reshape(-1, size) for name, _ in levels])
    np.testing.assert_allclose(patches.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(patches.std(axis=0), 1.0, atol=1e-4)
    assert out["img_feature_convert_jigsaw"].shape == (40, 4 * size)
