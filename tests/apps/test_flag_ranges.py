"""Out-of-range flags are refused before any work, each named with what to give instead."""

import pytest

from kaleido_tf.apps import app_flags


@pytest.mark.parametrize(
    "name, value",
    [
        ("learning_rate", -0.01),
        ("learning_rate", 0.0),
        ("train_steps", 0),
        ("train_steps", -5),
        ("num_epochs", 0),
        ("num_epochs", -1),
        ("train_batch_size", 0),
        ("train_batch_size", -4),
        ("eval_batch_size", 0),
        ("predict_batch_size", -4),
        ("warmup_ratio", -1.0),
        ("warmup_ratio", 1.5),
        ("num_eval_steps", -5),
        ("save_steps", 0),
        ("log_steps", 0),
        ("beam_size", 0),
        ("caption_mask_ratio", 0.0),
    ],
)
def test_each_out_of_range_flag_is_named(name, value):
    errors = app_flags.flag_range_errors({name: value})
    assert len(errors) == 1 and errors[0].startswith(f"--{name}={value} is out of range: give ")


@pytest.mark.parametrize(
    "name, value",
    [
        ("learning_rate", 1e-9),
        ("train_steps", 1),
        ("num_epochs", 1),
        ("train_batch_size", 1),
        ("warmup_ratio", 0.0),
        ("warmup_ratio", 1.0),
        ("weight_decay_ratio", 0.0),
        ("workerGPU", 0),
        ("no_repeat_ngram_size", 0),
        ("caption_mask_ratio", 1.0),
        ("train_steps", None),
    ],
)
def test_edge_values_in_range_pass(name, value):
    assert app_flags.flag_range_errors({name: value}) == []


def test_defaults_are_in_range_and_every_bad_flag_is_listed():
    app_flags.define_flags()
    flags = app_flags.FLAGS
    defaults = {name: flags[name].default for name in app_flags.FLAG_RANGES}
    assert app_flags.flag_range_errors(defaults) == []
    errors = app_flags.flag_range_errors({**defaults, "train_batch_size": -4, "learning_rate": 0.0})
    assert [e.split("=")[0] for e in errors] == ["--learning_rate", "--train_batch_size"]
