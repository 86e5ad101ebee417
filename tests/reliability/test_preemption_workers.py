"""SIGTERM to one worker of two (MultiWorkerMirroredStrategy on loopback): both agree to stop at the same step
boundary, the chief saves a checkpoint of it, both exit 143; the same command, rerun, resumes and ends with the
weights, optimizer state and step of an uninterrupted two-worker run."""

import signal
import time

import numpy as np
import pytest

from kaleido_tf.engines.preemption import PREEMPTED_EXIT_CODE
from tests.engines.workers import STEPS, assert_finished, finish_all, start_workers, two_workers
from tests.reliability.helpers import new_rng
from tests.reliability.test_kill_training import _checkpoint_values

pytestmark = pytest.mark.slow

SLEEP = 0.4  # seconds per step, so that the signal lands inside the run


def test_sigterm_to_one_worker_stops_both_at_one_step_and_the_rerun_ends_like_an_uninterrupted_run(
    tmp_path, tmp_path_factory
):
    whole_dir = two_workers(tmp_path_factory) / "model_dir"  # the reference run (shared with tests/engines)
    stopped_dir, progress = tmp_path / "stopped", tmp_path / "progress"
    stopped = start_workers(stopped_dir, f"--step_sleep={SLEEP}", progress=progress)

    rng, seed = new_rng()
    target = rng.randrange(2)
    deadline = time.time() + 600
    while not all((tmp_path / f"progress-{i}").exists() for i in range(2)):  # step 1 is done on both
        assert all(p.poll() is None for p in stopped) and time.time() < deadline, finish_all(stopped)
        time.sleep(0.05)
    delay = rng.uniform(0.0, SLEEP * (STEPS - 3))
    time.sleep(delay)
    stopped[target].send_signal(signal.SIGTERM)
    results = finish_all(stopped)
    where = f"(seed {seed}, SIGTERM to worker {target} {delay:.2f} s after step 1)"
    steps = []
    for index, (code, out) in enumerate(results):
        assert code == PREEMPTED_EXIT_CODE == 143, f"worker {index} {where}\n{out[-3000:]}"
        assert "Traceback" not in out, out[-3000:]
        line = next(x for x in out.splitlines() if x.startswith("[kaleido_tf] stopped by SIGTERM"))
        step = int(line.split("at step ")[1].split(";")[0])
        sender = "SIGTERM" if index == target else "SIGTERM to another worker"
        assert line == (
            f"[kaleido_tf] stopped by {sender} at step {step}; saved checkpoint {stopped_dir}/ckpt-{step}. "
            f"Run the same command again to resume from it"
        ), where
        steps.append(step)
    step = steps[0]
    assert steps == [step, step] and 1 <= step < STEPS, where
    assert sorted(p.name for p in stopped_dir.glob("ckpt-*.index")) == [f"ckpt-{step}.index"], where
    assert not list(stopped_dir.glob(".worker*")), where  # the other worker's copy is gone
    at_stop = _checkpoint_values(str(stopped_dir / f"ckpt-{step}"))
    assert int(at_stop["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) == step

    rerun = finish_all(start_workers(stopped_dir))
    assert_finished(rerun, f"rerun worker {where}")
    for _, out in rerun:
        assert f"resumed from {stopped_dir}/ckpt-{step} at step {step}" in out, out[-3000:]

    # save_counter counts the saves (one more here: the SIGTERM's), not training state.
    expected = _checkpoint_values(str(whole_dir / f"ckpt-{STEPS}"))
    got = _checkpoint_values(str(stopped_dir / f"ckpt-{STEPS}"))
    assert int(got.pop("save_counter/.ATTRIBUTES/VARIABLE_VALUE")) == 2
    assert int(expected.pop("save_counter/.ATTRIBUTES/VARIABLE_VALUE")) == 1
    assert set(got) == set(expected) and len(expected) > 100  # weights, Adam slots, step
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, atol=1e-6, rtol=0, err_msg=f"{name} {where}")
    assert int(got["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) == STEPS
