"""The training loop: resume gives the uninterrupted result; a NaN loss stops with the step named and the last
good checkpoint kept; TensorBoard scalars and evaluation results are written."""

import os

import numpy as np
import pytest
import tensorflow as tf

from kaleido_tf.engines import Trainer, TrainingDivergedError
from kaleido_tf.model_zoo import KaleidoBERTConfig
from kaleido_tf.tasks import PretrainTask
from tests.conftest import GOLDEN

BATCH = 3


def _data(nan_from=None):
    golden = np.load(os.path.join(GOLDEN, "tiny", "golden.npz"))
    feats = {k[len("input/") :]: golden[k] for k in golden.files if k.startswith("input/")}
    data = {k: np.concatenate([v, v[::-1], np.roll(v, 1, axis=0), v[[1, 0, 2]]]) for k, v in feats.items()}
    if nan_from is not None:
        data["img_feature_convert_rotation"] = data["img_feature_convert_rotation"].copy()
        data["img_feature_convert_rotation"][nan_from * BATCH :] = np.nan
    return data


def _trainer(model_dir, steps=6, dropout_prob=0.1, **kwargs):
    config = KaleidoBERTConfig.from_json_file(os.path.join(GOLDEN, "tiny", "config.json")).replace(
        hidden_dropout_prob=dropout_prob, attention_probs_dropout_prob=dropout_prob
    )
    trainer = Trainer(
        PretrainTask(config),
        str(model_dir),
        learning_rate=1e-3,
        train_steps=steps,
        progress=False,
        log_steps=1,
        **kwargs,
    )
    trainer.initialize()
    return trainer


def _dataset_fn(data):
    def make(context):
        # Seeded shuffling: the same order in every run, so a resumed run sees the same batches.
        ds = tf.data.Dataset.from_tensor_slices(data).shuffle(12, seed=5, reshuffle_each_iteration=True).repeat()
        return ds.batch(BATCH)

    return make


def _weights(trainer):
    return {v.path: v.numpy() for v in trainer.model.weights}


def test_resumed_run_ends_like_an_uninterrupted_one(tmp_path):
    tf.keras.utils.set_random_seed(3) if hasattr(tf, "keras") else None
    import keras

    keras.utils.set_random_seed(3)
    whole = _trainer(tmp_path / "whole")
    keras.utils.set_random_seed(3)
    init = _weights(whole)
    whole.train(_dataset_fn(_data()), BATCH)
    assert whole.global_step == 6

    keras.utils.set_random_seed(3)
    first = _trainer(tmp_path / "parts")
    for v in first.model.weights:
        v.assign(init[v.path])
    first.train(_dataset_fn(_data()), BATCH, stop_at_step=4)
    assert first.global_step == 4 and first.manager.latest_checkpoint.endswith("ckpt-4")
    del first
    second = _trainer(tmp_path / "parts")  # a new process would do the same: restore, skip seen batches
    assert second.global_step == 4
    second.train(_dataset_fn(_data()), BATCH)
    a, b = _weights(whole), _weights(second)
    for key in a:
        np.testing.assert_allclose(b[key], a[key], atol=1e-6, rtol=0, err_msg=key)
    assert any(f.startswith("events") for f in os.listdir(tmp_path / "parts" / "train"))


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path):
    trainer = _trainer(tmp_path / "nan", steps=8, dropout_prob=0.0, save_steps=2)
    # Batches 0 and 1 are clean, batch 2 (step 3) carries NaN features.
    with pytest.raises(
        TrainingDivergedError, match=r"became nan at step 3; stopped\. The last good checkpoint is .*ckpt-2"
    ):
        trainer.train(_dataset_fn_ordered(_data(nan_from=2)), BATCH)
    checkpoints = sorted(f for f in os.listdir(tmp_path / "nan") if f.startswith("ckpt-") and f.endswith(".index"))
    assert checkpoints == ["ckpt-2.index"]
    restored = _trainer(tmp_path / "nan", steps=8, dropout_prob=0.0)
    assert restored.global_step == 2
    assert all(np.isfinite(v.numpy()).all() for v in restored.model.weights)


def _dataset_fn_ordered(data):
    return lambda context: tf.data.Dataset.from_tensor_slices(data).batch(BATCH).repeat()


def test_evaluation_writes_metrics(tmp_path):
    trainer = _trainer(tmp_path / "eval", steps=2, dropout_prob=0.0)
    logs = trainer.train(
        _dataset_fn_ordered(_data()),
        BATCH,
        eval_dataset_fn=lambda c: tf.data.Dataset.from_tensor_slices(_data()).batch(4),
    )
    assert 0.0 <= logs["eval/itm_accuracy"] <= 1.0 and logs["eval/total"] > 0
    assert os.path.isfile(tmp_path / "eval" / "eval_results.json")
    assert os.listdir(tmp_path / "eval" / "eval")  # TensorBoard events


def test_loss_weights_reweigh_the_total_and_unknown_names_fail():
    data = _data()
    config = KaleidoBERTConfig.from_json_file(os.path.join(GOLDEN, "tiny", "config.json"))
    task = PretrainTask(config, loss_weights={"masked_lm_loss": 0.0, "next_sentence_loss": 2.0})
    model = task.build_model()
    features = {k: tf.constant(v[:4]) for k, v in data.items()}
    outputs = model(features, training=False)
    plain = PretrainTask(task.config).compute_losses(outputs, features)
    weighted = task.compute_losses(outputs, features)
    expected = float(plain["total"]) - float(plain["masked_lm_loss"]) + float(plain["next_sentence_loss"])
    assert float(weighted["total"]) == pytest.approx(expected, rel=1e-6)
    assert float(weighted["masked_lm_loss"]) == pytest.approx(float(plain["masked_lm_loss"]))
    with pytest.raises(ValueError, match=r"loss_weights names \['itm_loss'\] are not losses"):
        PretrainTask(task.config, loss_weights={"itm_loss": 1.0})
