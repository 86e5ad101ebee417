"""Training stopped by SIGTERM (kill, a preemptible cluster): a checkpoint at the next step boundary, one line,
exit 143; the same command, rerun, resumes and ends with the weights, optimizer state and step of an
uninterrupted run."""

import signal
import time

import numpy as np
import pytest

from kaleido_tf.engines import TRAINER_MARKER
from kaleido_tf.engines.preemption import PREEMPTED_EXIT_CODE
from tests.reliability.helpers import finish, new_rng, run, start
from tests.reliability.test_kill_training import _checkpoint_values
from tests.reliability.training_runs import STEPS, train_command

pytestmark = pytest.mark.slow

SLOW_STEP = ["-m", "tests.reliability.slow_child", "--slow", "kaleido_tf.engines.trainer:Trainer._write_scalars=0.3"]


def test_sigterm_saves_at_a_step_boundary_and_the_rerun_ends_like_an_uninterrupted_run(uninterrupted, tmp_path):
    list_file, schema, whole_dir = uninterrupted  # the reference run, once per session
    stopped_dir = tmp_path / "stopped"

    rng, seed = new_rng()
    # Only the end of the run and the SIGTERM save checkpoints; log (and so slow down) every step.
    argv = train_command(list_file, schema, stopped_dir, "--log_steps=1")
    process = start(SLOW_STEP + ["--", argv[1]] + argv[2:])
    deadline = time.time() + 600
    # TensorBoard's train/ appears when step 1 logs (the handler is in place since the initialisation).
    while not (stopped_dir / TRAINER_MARKER).exists() or not (stopped_dir / "train").exists():
        assert process.poll() is None and time.time() < deadline, process.communicate()[0][-3000:]
        time.sleep(0.02)
    delay = rng.uniform(0.0, 0.6)  # each step takes 0.3 s or more: the signal lands before the last one
    time.sleep(delay)
    process.send_signal(signal.SIGTERM)
    code, out = finish(process, timeout=600)
    where = f"(seed {seed}, SIGTERM {delay:.2f} s after step 1)"
    assert code == PREEMPTED_EXIT_CODE == 143, f"{where}\n{out[-3000:]}"
    line = next(x for x in out.splitlines() if "stopped by SIGTERM" in x)
    step = int(line.split("at step ")[1].split(";")[0])
    assert 1 <= step < STEPS, where
    assert line == (
        f"[kaleido_tf] stopped by SIGTERM at step {step}; saved checkpoint {stopped_dir}/ckpt-{step}. "
        f"Run the same command again to resume from it"
    ), where
    assert "Traceback" not in out
    assert sorted(p.name for p in stopped_dir.glob("ckpt-*.index")) == [f"ckpt-{step}.index"], where
    at_stop = _checkpoint_values(str(stopped_dir / f"ckpt-{step}"))
    assert int(at_stop["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) == step

    code, out = run(argv, timeout=600)
    assert code == 0, f"{where}\n{out[-3000:]}"
    assert f"resumed from {stopped_dir}/ckpt-{step} at step {step}" in out and f"finished at step {STEPS}" in out

    # save_counter counts the saves (one more here: the SIGTERM's), not training state.
    expected = _checkpoint_values(str(whole_dir / f"ckpt-{STEPS}"))
    got = _checkpoint_values(str(stopped_dir / f"ckpt-{STEPS}"))
    assert int(got.pop("save_counter/.ATTRIBUTES/VARIABLE_VALUE")) == 2
    assert int(expected.pop("save_counter/.ATTRIBUTES/VARIABLE_VALUE")) == 1
    assert set(got) == set(expected) and len(expected) > 100  # weights, Adam slots, step, dropout states
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, atol=1e-6, rtol=0, err_msg=f"{name} {where}")
    assert int(got["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) == STEPS
