"""The tiny pretraining run that the kill, SIGTERM and full-disk tests interrupt, and its uninterrupted reference
(trained once per test session: see `uninterrupted` in conftest.py)."""

import json
import os

from tests.apps.tiny_data import write_tiny_bundle
from tests.conftest import GOLDEN
from tests.reliability.helpers import run
from tests.session_once import once_per_session

STEPS = 13  # 16 examples x 3 epochs / batch 4 + 1 (EasyTransfer's arithmetic)


def train_command(list_file, schema, model_dir, *extra):
    """`python -m kaleido_tf.apps.pretrain_main` arguments: 13 steps of the tiny model, a checkpoint at the end.

    What decides the weights (data, steps, seed, learning rate) is fixed here; the tests add only flags that
    must not change them (--save_steps, --log_steps), or say why they do."""
    return [
        "-m",
        "kaleido_tf.apps.pretrain_main",
        "--mode=train",
        f"--train_input_fp={list_file}",
        f"--input_schema={schema}",
        f"--pretrain_model_name_or_path={os.path.join(GOLDEN, 'tiny', 'model.ckpt-0')}",
        "--input_sequence_length=16",
        "--train_batch_size=4",
        "--num_epochs=3",
        "--learning_rate=1e-3",
        "--seed=1",
        "--progress=false",
        f"--model_dir={model_dir}",
        *extra,
    ]


def _train_uninterrupted(directory):
    list_file, schema, _ = write_tiny_bundle(directory / "data", "pretrain", num_examples=16, num_files=2)
    code, out = run(train_command(list_file, schema, directory / "whole"), timeout=600)
    if code != 0:
        raise AssertionError(f"the uninterrupted reference run failed (exit {code}):\n{out[-3000:]}")
    (directory / "run.json").write_text(json.dumps({"list_file": str(list_file), "schema": schema}))


def uninterrupted_run(tmp_path_factory):
    """(list file, schema, model_dir): the tiny bundle and the uninterrupted run of `train_command` on it,
    whose only checkpoint is ckpt-13 (save_counter 1)."""
    directory = once_per_session(tmp_path_factory, "uninterrupted_training", _train_uninterrupted)
    given = json.loads((directory / "run.json").read_text())
    return given["list_file"], given["schema"], directory / "whole"
