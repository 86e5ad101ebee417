"""kaleido_tf reproduces the original's golden outputs, losses and optimizer steps (golden/tiny, tiny_adamw)."""

import os

import numpy as np
import pytest
import tensorflow as tf

import kaleido_tf
from kaleido_tf.convert.tf1_converter import model_variable_paths, tf1_to_keras_name
from kaleido_tf.optimizers import get_optimizer
from kaleido_tf.tasks import PretrainTask
from tests.core.conftest import golden_dir, golden_features, load_golden

OUTPUTS = (
    "mlm_logits",
    "nsp_logits",
    "rotation_logits",
    "jigsaw_logits",
    "camouflage_logits",
    "greymask_logits",
    "target_raw_grey_features",
    "blankmask_logits",
    "target_raw_blank_features",
    "pooled_output",
)


@pytest.fixture(scope="module", params=["tiny", "tiny_adamw"])
def loaded(request):
    name = request.param
    model = kaleido_tf.from_pretrained(os.path.join(golden_dir(name), "model.ckpt-0"))
    return name, model, load_golden(name)


def test_eval_and_predict_outputs(loaded):
    _, model, golden = loaded
    feats = golden_features(golden)
    for mode in ("eval", "predict"):
        out = model(feats, training=False, mode=None if mode == "eval" else "predict")
        for key in OUTPUTS:
            np.testing.assert_allclose(out[key], golden[f"{mode}/{key}"], atol=1e-5, rtol=0, err_msg=f"{mode}/{key}")
    out = model(feats, training=False, mode="predict")
    np.testing.assert_allclose(out["sequence_output"], golden["predict/sequence_output"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(out["pooled_output"], golden["predict/pooled_output_features"], atol=1e-5, rtol=0)


def test_eval_and_predict_differ_only_by_blank_zeroing(loaded):
    _, model, golden = loaded
    feats = golden_features(golden)
    eval_out = model(feats, training=False)
    predict_out = model(feats, training=False, mode="predict")
    # The blank patches are zeroed in eval: the model sees different inputs, the targets are the same.
    assert np.abs(eval_out["blankmask_logits"] - predict_out["blankmask_logits"]).max() > 1e-3
    np.testing.assert_array_equal(eval_out["target_raw_blank_features"], predict_out["target_raw_blank_features"])


def test_losses(loaded):
    _, model, golden = loaded
    feats = golden_features(golden)
    losses = kaleido_tf.losses.pretrain_losses(model(feats, training=False), feats, model.config)
    assert set(losses) == {k[len("loss/") :] for k in golden if k.startswith("loss/")}
    for key, value in losses.items():
        np.testing.assert_allclose(float(value), golden[f"loss/{key}"], atol=1e-5, rtol=0, err_msg=key)
    assert float(losses["greymask_loss"]) < 0  # quirk 3: the target softmax spans both patches


def test_finetune_category_head():
    golden = load_golden("tiny")
    model = kaleido_tf.from_pretrained(os.path.join(golden_dir("tiny"), "model.ckpt-0"), task="catepred")
    assert model.num_classes == 48 and not model.load_report.initialised
    logits = model.head(tf.constant(golden["eval/pooled_output"]))
    np.testing.assert_allclose(logits, golden["finetune/catepred_logits"], atol=1e-5, rtol=0)
    # The classifier's own backbone gives the same pooled output as the pretraining model (no blank ids given).
    feats = {k: v for k, v in golden_features(golden).items() if k != "img_blank_lm_ids"}
    out = model(feats, training=False)
    np.testing.assert_allclose(out["pooled_output"], golden["predict/pooled_output"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name,weight_decay", [("tiny", 0.0), ("tiny_adamw", 0.01)])
def test_training_steps(name, weight_decay):
    golden = load_golden(name)
    model = kaleido_tf.from_pretrained(os.path.join(golden_dir(name), "model.ckpt-0"))
    task = PretrainTask(model.config)
    optimizer = get_optimizer(1e-3, train_steps=10, warmup_ratio=0.1, weight_decay=weight_decay)
    feats = {k: tf.constant(v) for k, v in golden_features(golden).items()}
    step = tf.function(lambda: task.train_step(feats, model, optimizer)["total"])
    losses, lrs = [], []
    for _ in range(len(golden["train/step_losses"])):
        lrs.append(float(optimizer.learning_rate))  # the rate the coming update uses
        losses.append(float(step()))
    np.testing.assert_allclose(losses, golden["train/step_losses"], rtol=1e-4)
    np.testing.assert_allclose(lrs, golden["train/step_lrs"], rtol=1e-6)
    expected = np.load(os.path.join(golden_dir(name), "weights_after_train.npz"))
    paths = model_variable_paths(model)
    assert len(expected.files) == len(model.trainable_variables)
    for key in expected.files:
        variable = paths[tf1_to_keras_name(key.replace("__", "/"))]
        np.testing.assert_allclose(variable.numpy(), expected[key], atol=1e-5, rtol=0, err_msg=key)
