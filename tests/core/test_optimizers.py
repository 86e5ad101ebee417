"""Learning-rate schedule and the AdamW variant against the formulas of EasyTransfer's get_train_op."""

import numpy as np
import pytest
import tensorflow as tf

from kaleido_tf.convert import name_map
from kaleido_tf.optimizers import AdamWeightDecay, WarmupLinearDecay, compute_train_steps, get_optimizer


def test_train_steps_arithmetic():
    assert compute_train_steps(1000, 25, 64 * 4) == int(1000 * 25 / 256) + 1
    with pytest.raises(ValueError, match="batch"):
        compute_train_steps(10, 1, 0)


def test_schedule_warmup_multiplies_the_decayed_rate():
    schedule = WarmupLinearDecay(1e-3, train_steps=100, warmup_steps=10)
    rates = [float(schedule(s)) for s in (0, 5, 10, 50, 100, 150)]
    decayed = lambda s: 1e-3 * (1 - min(s, 100) / 100)  # noqa: E731
    expected = [0.0, decayed(5) * 0.5, decayed(10), decayed(50), 0.0, 0.0]
    np.testing.assert_allclose(rates, expected, rtol=1e-6, atol=1e-12)
    no_warmup = WarmupLinearDecay(2e-5, train_steps=10, warmup_steps=0)
    assert float(no_warmup(0)) == pytest.approx(2e-5)
    assert WarmupLinearDecay.from_config(schedule.get_config()).get_config() == schedule.get_config()


def test_adam_weight_decay_update_formula():
    var = tf.Variable([[1.0, -2.0], [0.5, 3.0]], name="kernel")
    bias = tf.Variable([0.3, -0.7], name="bias")
    opt = AdamWeightDecay(learning_rate=0.1, weight_decay_rate=0.2, beta_1=0.9, beta_2=0.999, epsilon=1e-6)
    g = np.array([[0.1, -0.2], [0.0, 0.4]], np.float32)
    gb = np.array([0.0, 0.0], np.float32)  # zero gradient: no Adam step, decay still applies where allowed
    v0, b0 = var.numpy().copy(), bias.numpy().copy()
    opt.apply_gradients([(tf.constant(g), var), (tf.constant(gb), bias)])
    m, v = 0.1 * g, 0.001 * g * g
    lr_t = 0.1 * np.sqrt(1 - 0.999) / (1 - 0.9)
    np.testing.assert_allclose(var.numpy(), v0 - lr_t * (m / (np.sqrt(v) + 1e-6) + 0.2 * v0), rtol=1e-5)
    np.testing.assert_allclose(bias.numpy(), b0, rtol=0, atol=0)  # "bias" is excluded from decay


def test_decay_exclusion_agrees_with_original_names():
    """Deciding on the Keras path equals deciding on the EasyTransfer name, for every mapped rule."""
    import re

    opt = AdamWeightDecay(weight_decay_rate=0.01)
    from kaleido_tf.convert.tf1_converter import tf1_to_keras_name
    from tests.core.tf1_reference import variable_shapes

    cfg = {
        "hidden_size": 8,
        "intermediate_size": 16,
        "patch_feature_size": 4,
        "vocab_size": 10,
        "type_vocab_size": 2,
        "max_position_embeddings": 8,
        "patch_type_vocab_size": 6,
        "num_hidden_layers": 2,
        "img_rotation_label_num": 4,
        "img_rotation_seq_len": 1,
        "img_jigsaw_label_num": 24,
        "img_jigsaw_seq_len": 4,
        "img_camouflage_label_num": 9,
        "img_camouflage_seq_len": 9,
    }
    for tf1_name in variable_shapes(cfg):
        original = not any(re.search(p, tf1_name) for p in ("LayerNorm", "layer_norm", "bias"))

        class _Var:  # only the path matters
            path = "model/" + tf1_to_keras_name(tf1_name)

        assert opt.uses_weight_decay(_Var) == original, tf1_name
    assert name_map.RENAME_RULES  # the table is data, not code


def test_get_optimizer_kinds():
    adam = get_optimizer(1e-4, train_steps=100)
    assert type(adam).__name__ == "Adam" and adam.beta_2 == 0.98 and adam.epsilon == 1e-6
    assert adam.global_clipnorm == 1.0
    adamw = get_optimizer(1e-4, train_steps=100, weight_decay=0.01)
    assert isinstance(adamw, AdamWeightDecay) and adamw.beta_2 == 0.999
