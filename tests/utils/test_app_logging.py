"""Each sentence of an application is printed once: the library's log and the application's own lines share one
handler, not also absl's root handler, and a sentence the library logged and returned is not printed again."""

import logging
import os
import subprocess
import sys

import pytest
from absl import logging as absl_logging

from kaleido_tf.utils import app_logging
from tests.apps.tiny_data import CONFIG_PATH, write_tiny_bundle

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def app_logger():
    logger = logging.getLogger(app_logging.LOGGER_NAME)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    root = logging.getLogger()
    root_saved = (list(root.handlers), root.level)
    absl_logging.use_absl_handler()  # what absl's app.run does: absl's handler on the root logger, INFO shown
    absl_logging.set_verbosity(absl_logging.INFO)
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved
    root.handlers[:], _ = root_saved
    root.setLevel(root_saved[1])


def test_a_logged_and_returned_sentence_is_printed_once(app_logger, capsys):
    app_logging.configure_app_logging()
    app_logging.configure_app_logging()  # a second call adds no second handler
    message = "random initialisation (--pretrain_model_name_or_path=random)"
    logging.getLogger("kaleido_tf.engines.trainer").info(message)  # the library logs it ...
    app_logging.say(message)  # ... and the application prints what it got back
    logging.getLogger("kaleido_tf.model_zoo.registry").warning("freshly initialised: head")
    app_logging.say("finished at step 2")
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"[kaleido_tf] {message}",
        "[kaleido_tf] WARNING: freshly initialised: head",
        "[kaleido_tf] finished at step 2",
    ]
    assert message not in err  # not again through absl's handler


def test_say_without_the_application_handler_prints_directly(capsys):
    app_logging.say("wrote 3 predictions")
    assert capsys.readouterr().out == "[kaleido_tf] wrote 3 predictions\n"


def test_the_initialisation_sentence_names_what_was_given():
    from kaleido_tf.apps.runner import init_fn

    assert init_fn("random")(None) == "random initialisation (--pretrain_model_name_or_path=random)"
    assert init_fn(None)(None) == "random initialisation (no --pretrain_model_name_or_path given)"


@pytest.mark.slow
def test_training_app_prints_the_initialisation_once(tmp_path):
    list_file, schema, _ = write_tiny_bundle(tmp_path / "data", "pretrain", num_examples=8, num_files=1)
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kaleido_tf.apps.pretrain_main",
            "--mode=train",
            f"--train_input_fp={list_file}",
            f"--input_schema={schema}",
            "--pretrain_model_name_or_path=random",
            f"--model_config={CONFIG_PATH}",
            "--input_sequence_length=16",
            "--train_batch_size=4",
            "--train_steps=2",
            "--noprogress",
            f"--model_dir={tmp_path / 'model'}",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert out.count("random initialisation") == 1, out[-3000:]
    assert "[kaleido_tf] random initialisation (--pretrain_model_name_or_path=random)" in done.stdout
    assert out.count("finished at step 2") == 1
