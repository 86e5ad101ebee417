"""Fixtures of the captioning tests: the tiny vocab and a tiny captioner trained to caption 4 classes."""

import keras
import pytest
import tensorflow as tf

from kaleido_tf.model_zoo import registry
from kaleido_tf.optimizers import get_optimizer
from kaleido_tf.tasks.caption_task import CaptionTask
from tests.caption.caption_data import TINY_CHECKPOINT, batch_features, caption_examples, write_vocab

TRAIN_STEPS = 200


@pytest.fixture(scope="session")
def vocab_file(tmp_path_factory):
    return write_vocab(str(tmp_path_factory.mktemp("caption_vocab") / "vocab.txt"))


@pytest.fixture(scope="session")
def trained(vocab_file):
    """(task, model, features, losses): the golden tiny checkpoint finetuned to caption 8 examples."""
    keras.utils.set_random_seed(0)
    task = CaptionTask(registry.config_for(TINY_CHECKPOINT), vocab_file=vocab_file, mask_ratio=0.5)
    model = task.build_model()
    registry.load_weights(model, TINY_CHECKPOINT)
    features = {k: tf.constant(v) for k, v in batch_features(caption_examples(8)).items()}
    optimizer = get_optimizer(3e-3, train_steps=TRAIN_STEPS, warmup_ratio=0.1)
    step = tf.function(lambda: task.train_step(features, model, optimizer)["total"])
    losses = [float(step()) for _ in range(TRAIN_STEPS)]
    return task, model, features, losses
