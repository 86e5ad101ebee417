"""Parity at sizes other than the golden fixture: nothing may be hard-wired to it.

A random TF1-style checkpoint (EasyTransfer names, Adam slots) of another shape is loaded through the
converter and compared with the functional reference, which itself reproduces the golden outputs.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import kaleido_tf
from kaleido_tf.convert.tf1_converter import model_variable_paths, tf1_to_keras_name
from kaleido_tf.optimizers import get_optimizer
from kaleido_tf.tasks import PretrainTask
from tests.core import tf1_reference as ref

OTHER = {
    "model_type": "kaleidobert",
    "vocab_size": 57,
    "hidden_size": 24,
    "intermediate_size": 40,
    "num_hidden_layers": 3,
    "num_attention_heads": 2,
    "max_position_embeddings": 20,
    "type_vocab_size": 3,
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "initializer_range": 0.02,
    "patch_type_vocab_size": 2,
    "patch_feature_size": 20,
    "text_seq_len": 12,
    "img_rotation_seq_len": 1,
    "img_jigsaw_seq_len": 4,
    "img_camouflage_seq_len": 9,
    "img_greymask_seq_len": 16,
    "img_blankmask_seq_len": 25,
    "img_rotation_label_num": 4,
    "img_jigsaw_label_num": 24,
    "img_camouflage_label_num": 10,
    "masked_greymask_patch_num": 2,
    "masked_blankmask_patch_num": 3,
}
BATCH = 5


@pytest.fixture(scope="module")
def other_case(tmp_path_factory):
    directory = tmp_path_factory.mktemp("other")
    with open(directory / "config.json", "w") as f:
        json.dump(OTHER, f)
    weights = ref.random_weights(OTHER, seed=7)
    ref.write_tf1_checkpoint(str(directory / "model.ckpt-0"), weights)
    feats = ref.random_features(OTHER, BATCH, seed=11, num_masked=6)
    return str(directory), weights, feats


def test_outputs_and_losses_match_reference(other_case):
    directory, weights, feats = other_case
    model = kaleido_tf.from_pretrained(os.path.join(directory, "model.ckpt-0"))
    assert model.config.patch_type_vocab_size == 2  # levels 2..5 get no type embedding (quirk 1)
    for mode in ("eval", "predict"):
        ours = model(feats, training=False, mode=None if mode == "eval" else "predict")
        theirs = ref.forward(weights, OTHER, feats, mode)
        for key, value in theirs.items():
            np.testing.assert_allclose(ours[key], value, atol=1e-5, rtol=0, err_msg=f"{mode}/{key}")
    ours = kaleido_tf.losses.pretrain_losses(model(feats, training=False), feats, model.config)
    theirs = ref.losses(ref.forward(weights, OTHER, feats, "eval"), feats, OTHER)
    for key, value in theirs.items():
        np.testing.assert_allclose(float(ours[key]), float(value), atol=1e-5, rtol=0, err_msg=key)


@pytest.mark.parametrize("base_lr,weight_decay", [(1e-3, 0.0), (1e-3, 0.01)])
def test_training_matches_reference(other_case, base_lr, weight_decay):
    directory, weights, feats = other_case
    steps, train_steps = 4, 20  # warmup of 2 steps: rates 0, then half the decayed rate, then decayed
    expected, ref_losses, ref_lrs = ref.train(weights, OTHER, feats, steps, base_lr, train_steps, 0.1, weight_decay)
    model = kaleido_tf.from_pretrained(os.path.join(directory, "model.ckpt-0"))
    task = PretrainTask(model.config)
    optimizer = get_optimizer(base_lr, train_steps=train_steps, warmup_ratio=0.1, weight_decay=weight_decay)
    tensors = {k: tf.constant(v) for k, v in feats.items()}
    step = tf.function(lambda: task.train_step(tensors, model, optimizer)["total"])
    losses, lrs = [], []
    for _ in range(steps):
        lrs.append(float(optimizer.learning_rate))
        losses.append(float(step()))
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-4)
    np.testing.assert_allclose(lrs, ref_lrs, rtol=1e-6)
    assert lrs[0] == 0.0 and 0 < lrs[1] < lrs[2]
    paths = model_variable_paths(model)
    for name, value in expected.items():
        np.testing.assert_allclose(paths[tf1_to_keras_name(name)].numpy(), value, atol=1e-5, rtol=0, err_msg=name)


def test_out_of_range_type_tables_get_zero_gradients_not_none(other_case):
    """With patch_type_vocab_size 2, levels 2..5 have no type row, as in the original, but their tables still
    take part (zero gradient), so the AdamW variant decays them as the original does."""
    directory, _, feats = other_case
    model = kaleido_tf.from_pretrained(os.path.join(directory, "model.ckpt-0"))
    with tf.GradientTape() as tape:
        total = kaleido_tf.losses.pretrain_losses(model(feats, training=True), feats, model.config)["total"]
    paths = model_variable_paths(model)
    names = [f"bert/{level}_embeddings/type_embeddings" for level in ("rotation", "jigsaw", "blankmask")]
    grads = [tf.convert_to_tensor(g) for g in tape.gradient(total, [paths[n] for n in names])]
    assert all(g is not None for g in grads)
    assert np.abs(np.asarray(grads[0])).max() > 0  # segment 1 exists in a 2-row table
    assert np.abs(np.asarray(grads[1])).max() == 0 and np.abs(np.asarray(grads[2])).max() == 0
