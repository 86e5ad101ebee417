"""Predictor: restores a trained model from its model_dir without optimizer state and predicts as the trainer does."""

import os

import numpy as np
import tensorflow as tf

from kaleido_tf.engines import Predictor
from kaleido_tf.tasks import PretrainTask
from tests.engines.test_trainer import _data, _trainer

BATCH = 3


def _batches(data):
    def make(context):
        return tf.data.Dataset.from_tensor_slices(data).batch(BATCH)

    return make


def test_predictor_restores_a_training_run_and_predicts_as_its_trainer(tmp_path):
    trainer = _trainer(tmp_path / "run", steps=2, dropout_prob=0.0)
    data = _data()
    trainer.train(_batches(data), BATCH)
    before = sorted(os.listdir(tmp_path / "run"))

    predictor = Predictor(PretrainTask(trainer.task.config)).load(str(tmp_path / "run"))

    assert "pretrain weights" in predictor.load_message
    assert not hasattr(predictor, "optimizer")
    trained = {v.path: v.numpy() for v in trainer.model.weights}
    for v in predictor.model.weights:
        np.testing.assert_array_equal(v.numpy(), trained[v.path], err_msg=v.path)
    got = list(predictor.predict(_batches(data), passthrough=("input_ids",)))
    want = list(trainer.predict(_batches(data), passthrough=("input_ids",)))
    assert len(got) == len(want) == -(-len(data["input_ids"]) // BATCH)
    for g, w in zip(got, want):
        assert sorted(g) == sorted(w)
        for key in w:
            np.testing.assert_allclose(g[key], w[key], atol=1e-6, rtol=0, err_msg=key)
    np.testing.assert_array_equal(np.concatenate([g["input_ids"] for g in got]), data["input_ids"])
    assert sorted(os.listdir(tmp_path / "run")) == before  # prediction writes nothing into the model_dir
