"""Training survives SIGKILL: the same command, rerun, resumes and ends with the weights of an uninterrupted
run; a diverging run stops with the step named and keeps its last good checkpoint."""

import os
import signal

import numpy as np
import pytest
import tensorflow as tf

from tests.apps.tiny_data import write_tiny_bundle
from tests.conftest import GOLDEN
from tests.reliability.helpers import finish, kill_at_random, new_rng, run, start

pytestmark = pytest.mark.slow

STEPS = 13  # 16 examples x 3 epochs / batch 4 + 1 (EasyTransfer's arithmetic)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    directory = tmp_path_factory.mktemp("kill_training")
    list_file, schema, _ = write_tiny_bundle(directory / "data", "pretrain", num_examples=16, num_files=2)
    return directory, list_file, schema


def _command(list_file, schema, model_dir, *extra):
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
        "--save_steps=1",
        "--learning_rate=1e-3",
        "--seed=1",
        "--progress=false",
        f"--model_dir={model_dir}",
        *extra,
    ]


def _checkpoint_values(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if name != "_CHECKPOINTABLE_OBJECT_GRAPH"
    }


def test_killed_training_resumes_to_the_uninterrupted_weights(bundle):
    directory, list_file, schema = bundle
    whole_dir, killed_dir = directory / "whole", directory / "killed"
    whole = start(_command(list_file, schema, whole_dir))  # the reference run, alongside

    rng, seed = new_rng()
    command = _command(list_file, schema, killed_dir)
    code, out, delay = kill_at_random(command, lambda: (killed_dir / "ckpt-1.index").exists(), 0.5, rng)
    where = f"(kill seed {seed}, {delay:.2f} s after the first checkpoint)"
    assert code == -signal.SIGKILL, f"the run ended before the kill {where}:\n{out[-3000:]}"
    assert not (killed_dir / f"ckpt-{STEPS}.index").exists(), f"killed after the last step {where}"
    at_kill = tf.train.get_checkpoint_state(str(killed_dir))
    assert at_kill is not None, where

    code, out = run(command)
    assert code == 0, f"{where}\n{out[-3000:]}"
    assert "resumed from" in out and f"finished at step {STEPS}" in out, out[-3000:]
    code, whole_out = finish(whole)
    assert code == 0, whole_out[-3000:]

    expected = _checkpoint_values(str(whole_dir / f"ckpt-{STEPS}"))
    got = _checkpoint_values(str(killed_dir / f"ckpt-{STEPS}"))
    assert set(got) == set(expected) and len(expected) > 100  # weights, Adam slots, step, dropout states
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, atol=1e-6, rtol=0, err_msg=f"{name} {where}")
    assert int(got["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) == STEPS


def test_diverging_run_stops_with_the_step_and_keeps_the_last_good_checkpoint(bundle):
    directory, list_file, schema = bundle
    model_dir = directory / "diverged"
    # No warmup and an absurd learning rate: the first update (step 1) is finite, the loss at step 2 is not.
    code, out = run(_command(list_file, schema, model_dir, "--learning_rate=1e38", "--warmup_ratio=0"))
    assert code == 2, out[-3000:]
    assert (
        f"error: the training loss became nan at step 2; stopped. The last good checkpoint is {model_dir}/ckpt-1" in out
    ), out[-3000:]
    assert "Traceback" not in out
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-1")
    assert sorted(f for f in os.listdir(model_dir) if f.endswith(".index")) == ["ckpt-1.index"]
    values = _checkpoint_values(str(model_dir / "ckpt-1"))
    assert all(np.isfinite(v).all() for v in values.values() if np.issubdtype(np.asarray(v).dtype, np.floating))
