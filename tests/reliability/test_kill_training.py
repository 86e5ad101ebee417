"""Training survives SIGKILL: the same command, rerun, resumes and ends with the weights of an uninterrupted
run; a diverging run stops with the step named and keeps its last good checkpoint."""

import os
import signal

import numpy as np
import pytest
import tensorflow as tf

from tests.apps.tiny_data import write_tiny_bundle
from tests.reliability.helpers import kill_at_random, new_rng, run
from tests.reliability.training_runs import STEPS, train_command

pytestmark = pytest.mark.slow


def _command(list_file, schema, model_dir, *extra):
    return train_command(list_file, schema, model_dir, "--save_steps=1", *extra)  # a checkpoint after each step


def _checkpoint_values(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if name != "_CHECKPOINTABLE_OBJECT_GRAPH"
    }


def test_killed_training_resumes_to_the_uninterrupted_weights(uninterrupted, tmp_path):
    list_file, schema, whole_dir = uninterrupted  # the reference run, once per session
    killed_dir = tmp_path / "killed"

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

    # save_counter counts the saves (here one per step, the last step's being also the one at the end, which is
    # not written twice; the reference's only the one at the end), not training state.
    expected = _checkpoint_values(str(whole_dir / f"ckpt-{STEPS}"))
    got = _checkpoint_values(str(killed_dir / f"ckpt-{STEPS}"))
    assert int(got.pop("save_counter/.ATTRIBUTES/VARIABLE_VALUE")) == STEPS
    assert int(expected.pop("save_counter/.ATTRIBUTES/VARIABLE_VALUE")) == 1
    assert set(got) == set(expected) and len(expected) > 100  # weights, Adam slots, step, dropout states
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, atol=1e-6, rtol=0, err_msg=f"{name} {where}")
    assert int(got["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) == STEPS


def test_diverging_run_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    list_file, schema, _ = write_tiny_bundle(tmp_path / "data", "pretrain", num_examples=16, num_files=2)
    model_dir = tmp_path / "diverged"
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
