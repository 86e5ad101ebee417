"""Fixtures of the captioning tests: the tiny vocab and a tiny captioner trained to caption 4 classes."""

import json

import keras
import pytest
import tensorflow as tf

from kaleido_tf.model_zoo import registry
from kaleido_tf.optimizers import get_optimizer
from kaleido_tf.tasks.caption_task import CaptionTask
from tests.caption.caption_data import TINY_CHECKPOINT, batch_features, caption_examples, write_vocab
from tests.session_once import once_per_session

TRAIN_STEPS = 200


@pytest.fixture(scope="session")
def vocab_file(tmp_path_factory):
    return write_vocab(str(tmp_path_factory.mktemp("caption_vocab") / "vocab.txt"))


@pytest.fixture(scope="session")
def trained(vocab_file, tmp_path_factory):
    """(task, model, features, losses): the golden tiny checkpoint finetuned to caption 8 examples. Trained once
    per run (tests/session_once.py); a worker that did not train it loads the trained weights."""
    keras.utils.set_random_seed(0)
    task = CaptionTask(registry.config_for(TINY_CHECKPOINT), vocab_file=vocab_file, mask_ratio=0.5)
    model = task.build_model()
    registry.load_weights(model, TINY_CHECKPOINT)
    features = {k: tf.constant(v) for k, v in batch_features(caption_examples(8)).items()}
    trained_here = []

    def train(root):
        optimizer = get_optimizer(3e-3, train_steps=TRAIN_STEPS, warmup_ratio=0.1)
        step = tf.function(lambda: task.train_step(features, model, optimizer)["total"])
        losses = [float(step()) for _ in range(TRAIN_STEPS)]
        model.save_weights(str(root / "model.weights.h5"))
        (root / "losses.json").write_text(json.dumps(losses))
        trained_here.append(True)

    root = once_per_session(tmp_path_factory, "caption_trained", train)
    if not trained_here:
        model.load_weights(str(root / "model.weights.h5"))
    losses = json.loads((root / "losses.json").read_text())
    return task, model, features, losses
