"""The task models (pretraining, classifier, captioner) through the shared checks at a tiny size."""

import numpy as np
import tensorflow as tf

from kaleido_tf.model_zoo import (
    KaleidoBERTCaptioner,
    KaleidoBERTClassifier,
    KaleidoBERTConfig,
    KaleidoBERTPretrainModel,
)
from tests.harness import run_layer_test

B, T, H, F = 2, 5, 8, 6
CONFIG = KaleidoBERTConfig.from_dict(
    {
        "vocab_size": 110,  # the captioner's default special ids (101 to 103) must lie inside
        "hidden_size": H,
        "intermediate_size": 12,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "max_position_embeddings": 16,
        "initializer_range": 0.5,
        "patch_feature_size": F,
        "patch_type_vocab_size": 6,
        "text_seq_len": T,
        "img_rotation_seq_len": 1,
        "img_jigsaw_seq_len": 2,
        "img_camouflage_seq_len": 2,
        "img_greymask_seq_len": 3,
        "img_blankmask_seq_len": 3,
        "img_rotation_label_num": 4,
        "img_jigsaw_label_num": 5,
        "img_camouflage_label_num": 3,
        "masked_greymask_patch_num": 2,
        "masked_blankmask_patch_num": 2,
    }
)
N = CONFIG.num_patches


def _features(seed=0):
    rng = np.random.default_rng(seed)
    features = {
        "input_ids": rng.integers(1, 100, (B, T)).astype(np.int32),
        "input_mask": np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], np.int32),
        "segment_ids": np.zeros((B, T), np.int32),
        "masked_lm_positions": np.array([[1, 3], [0, 4]], np.int32),
        "img_grey_lm_ids": np.array([[0, 2], [1, 2]], np.int32),
        "img_blank_lm_ids": np.array([[2, 0], [1, 1]], np.int32),
    }
    for _, suffix, n in CONFIG.level_lengths():
        features[f"img_feature_convert_{suffix}"] = rng.normal(size=(B, n * F)).astype(np.float32)
        features[f"img_loc_position_{suffix}"] = rng.random((B, n * 5)).astype(np.float32)
    return {key: tf.constant(value) for key, value in features.items()}


def test_pretrain_model_checks(tmp_path):
    shapes = {
        "mlm_logits": (B * 2, 110),
        "nsp_logits": (B, 2),
        "rotation_logits": (B, 4),
        "jigsaw_logits": (B, 5),
        "camouflage_logits": (B, 3),
        "greymask_logits": (B * 2, F),
        "target_raw_grey_features": (B * 2, F),
        "blankmask_logits": (B * 2, F),
        "target_raw_blank_features": (B * 2, F),
        "pooled_output": (B, H),
        "sequence_output": (B, T + N, H),
    }
    _, output = run_layer_test(KaleidoBERTPretrainModel, {"config": CONFIG}, _features(), shapes, tmp_path)
    # Train/eval semantics: the blank-level patches at img_blank_lm_ids reach the model zeroed, the targets
    # are the features as given.
    blank = _features()["img_feature_convert_blank_mask"].numpy().reshape(B, 3, F)
    want = np.concatenate([blank[0, [2, 0]], blank[1, [1, 1]]])
    np.testing.assert_array_equal(output["target_raw_blank_features"].numpy(), want)


def test_classifier_checks(tmp_path):
    kwargs = {"config": CONFIG, "task": "subcatepred", "num_classes": 3, "head_dropout_prob": 0.1}
    model, output = run_layer_test(
        KaleidoBERTClassifier, kwargs, _features(), {"logits": (B, 3), "pooled_output": (B, H)}, tmp_path
    )
    assert model.head.name == "subcatepred_dense"
    want = output["pooled_output"].numpy() @ model.head.kernel.numpy() + model.head.bias.numpy()
    np.testing.assert_allclose(output["logits"].numpy(), want, atol=1e-5, rtol=0)


def test_captioner_checks(tmp_path):
    features = _features()
    model, output = run_layer_test(
        KaleidoBERTCaptioner,
        {"config": CONFIG, "max_caption_length": 4},
        features,
        {"mlm_logits": (B * 2, 110), "sequence_output": (B, T + N, H)},
        tmp_path,
        no_gradient=("pooler",),  # captioning reads the sequence, never the pooled output
    )
    # Under the captioning mask a later caption token reaches neither the earlier ones nor the patches.
    later = dict(features, input_ids=tf.concat([features["input_ids"][:, :3], tf.fill([B, 2], 7)], axis=1))
    moved = model(later)["sequence_output"].numpy()
    kept = np.r_[0:3, T : T + N]
    np.testing.assert_allclose(moved[:, kept], output["sequence_output"].numpy()[:, kept], atol=1e-5, rtol=0)
    assert np.abs(moved[1, 3:T] - output["sequence_output"].numpy()[1, 3:T]).max() > 1e-3
