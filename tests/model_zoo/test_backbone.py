"""KaleidoBERTBackbone: the shared backbone checks, its arguments named as the config.json keys, and its masks."""

import numpy as np
import tensorflow as tf

from kaleido_tf.model_zoo import KaleidoBERTBackbone, KaleidoBERTConfig
from kaleido_tf.model_zoo.kaleidobert_backbone import CONFIG_FIELDS, LEVELS
from tests.harness import run_backbone_test

B, T, H, F = 2, 4, 8, 6
LEVEL_LENGTHS = (1, 1, 2, 2, 3)
N = sum(LEVEL_LENGTHS)
KWARGS = {
    "vocab_size": 30,
    "hidden_size": H,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 12,
    "max_position_embeddings": 16,
    "type_vocab_size": 2,
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "initializer_range": 0.5,
    "patch_feature_size": F,
    "patch_type_vocab_size": 6,
    "level_lengths": LEVEL_LENGTHS,
    "text_seq_len": T,
}


def _features(seed=0):
    rng = np.random.default_rng(seed)
    features = {
        "input_ids": rng.integers(1, 30, (B, T)).astype(np.int32),
        "input_mask": np.array([[1, 1, 1, 0], [1, 1, 1, 1]], np.int32),
        "segment_ids": np.zeros((B, T), np.int32),
    }
    for (_, suffix), n in zip(LEVELS, LEVEL_LENGTHS):
        features[f"img_feature_convert_{suffix}"] = rng.normal(size=(B, n * F)).astype(np.float32)
        features[f"img_loc_position_{suffix}"] = rng.random((B, n * 5)).astype(np.float32)
    return {key: tf.constant(value) for key, value in features.items()}


def test_backbone_checks(tmp_path):
    backbone, (sequence, pooled) = run_backbone_test(
        KaleidoBERTBackbone,
        KWARGS,
        _features(),
        [(B, T + N, H), (B, H)],
        tmp_path,
        expected_num_trainable_weights=5 + 1 + 5 * 4 + 2 * 16 + 2,  # text, position_dense, levels, blocks, pooler
    )
    # The pooled output is tanh(dense(position 0)), and the fast path gives the same.
    np.testing.assert_allclose(pooled.numpy(), backbone.pooler(sequence[:, 0]).numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(backbone.pooled_output(_features()).numpy(), pooled.numpy(), atol=1e-5, rtol=0)


def test_backbone_arguments_are_the_config_json_keys():
    config = KaleidoBERTConfig.from_dict(
        {**{k: v for k, v in KWARGS.items() if k != "level_lengths"}, "img_camouflage_seq_len": 7}
    )
    backbone = KaleidoBERTBackbone.from_kaleido_config(config)
    backbone_config = backbone.get_config()
    for name in CONFIG_FIELDS:
        assert getattr(backbone, name) == getattr(config, name) == backbone_config[name], name
    assert backbone.level_lengths == tuple(n for _, _, n in config.level_lengths()) == (1, 4, 7, 16, 25)
    # The blocks inherit the same settings under the same names.
    backbone.build()
    block = backbone.encoder.blocks[0].get_config()
    for name in ("hidden_size", "num_attention_heads", "intermediate_size", "hidden_dropout_prob"):
        assert block[name] == getattr(config, name), name
    assert block["attention_probs_dropout_prob"] == config.attention_probs_dropout_prob
    assert backbone.embeddings.hidden_dropout_prob == backbone.patch_embeddings[0].hidden_dropout_prob == 0.1


def test_masked_text_does_not_reach_the_patches():
    """Image only (no text) and text whose input_mask is all 0 give the patches the same outputs."""
    backbone = KaleidoBERTBackbone(**KWARGS)
    features = _features(1)
    image_only = {k: v for k, v in features.items() if k not in ("input_ids", "input_mask", "segment_ids")}
    masked = dict(features, input_mask=tf.zeros((B, T), tf.int32))
    a, _ = backbone(image_only)
    b, _ = backbone(masked)
    assert a.shape == b.shape == (B, T + N, H)
    np.testing.assert_allclose(a[:, T:].numpy(), b[:, T:].numpy(), atol=1e-5, rtol=0)


def test_image_mask_is_ignored_by_default_and_honoured_on_request():
    """ORIGINAL.md quirk 2: the original attends to every patch whatever image_mask says."""
    features = _features(2)
    image_mask = np.ones((B, N), np.int32)
    image_mask[:, -1] = 0  # the last blank-mask patch
    features["image_mask"] = tf.constant(image_mask)
    changed = dict(features)
    blank = features["img_feature_convert_blank_mask"].numpy().copy()
    blank[:, -F:] += 5.0  # only the masked patch's features move
    changed["img_feature_convert_blank_mask"] = tf.constant(blank)
    for use_image_mask, moves in ((False, True), (True, False)):
        backbone = KaleidoBERTBackbone(**KWARGS, use_image_mask=use_image_mask)
        a, _ = backbone(features)
        b, _ = backbone(changed)
        other_rows = np.abs(a[:, : T + N - 1].numpy() - b[:, : T + N - 1].numpy()).max()
        assert (other_rows > 1e-3) == moves, (use_image_mask, other_rows)
