"""SIGTERM to one worker of two (MultiWorkerMirroredStrategy on loopback): both agree to stop at the same step
boundary, the chief saves a checkpoint of it, both exit 143; the same command, rerun, resumes and ends with the
weights, optimizer state and step of an uninterrupted two-worker run."""

import json
import signal
import socket
import time

import numpy as np
import pytest

from kaleido_tf.engines.preemption import PREEMPTED_EXIT_CODE
from tests.reliability.helpers import finish, new_rng, start
from tests.reliability.test_kill_training import _checkpoint_values

pytestmark = pytest.mark.slow

STEPS = 6
SLEEP = 0.4  # seconds per step, so that the signal lands inside the run


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_workers(model_dir, progress=None):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    procs = []
    for index in range(2):
        argv = ["-m", "tests.reliability.preempt_worker", str(model_dir), f"--steps={STEPS}", f"--step_sleep={SLEEP}"]
        if progress is not None:
            argv.append(f"--progress={progress}-{index}")
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(start(argv, TF_CONFIG=tf_config))
    return procs


def _finish_all(procs):
    return [finish(p, timeout=600) for p in procs]


def test_sigterm_to_one_worker_stops_both_at_one_step_and_the_rerun_ends_like_an_uninterrupted_run(tmp_path):
    whole_dir, stopped_dir = tmp_path / "whole", tmp_path / "stopped"
    progress = tmp_path / "progress"
    whole = _start_workers(whole_dir)  # the reference run, alongside
    stopped = _start_workers(stopped_dir, progress)

    rng, seed = new_rng()
    target = rng.randrange(2)
    deadline = time.time() + 600
    while not all((tmp_path / f"progress-{i}").exists() for i in range(2)):  # step 1 is done on both
        assert all(p.poll() is None for p in stopped) and time.time() < deadline, _finish_all(stopped)
        time.sleep(0.05)
    delay = rng.uniform(0.0, SLEEP * (STEPS - 3))
    time.sleep(delay)
    stopped[target].send_signal(signal.SIGTERM)
    results = _finish_all(stopped)
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

    for index, (code, out) in enumerate(_finish_all(_start_workers(stopped_dir))):
        assert code == 0, f"rerun worker {index} {where}\n{out[-3000:]}"
        assert f"resumed from {stopped_dir}/ckpt-{step} at step {step}" in out and f"finished at step {STEPS}" in out
    for index, (code, out) in enumerate(_finish_all(whole)):
        assert code == 0, f"reference worker {index}\n{out[-3000:]}"

    # save_counter counts the saves (one more here: the SIGTERM's), not training state.
    expected = _checkpoint_values(str(whole_dir / f"ckpt-{STEPS}"))
    got = _checkpoint_values(str(stopped_dir / f"ckpt-{STEPS}"))
    assert int(got.pop("save_counter/.ATTRIBUTES/VARIABLE_VALUE")) == 2
    assert int(expected.pop("save_counter/.ATTRIBUTES/VARIABLE_VALUE")) == 1
    assert set(got) == set(expected) and len(expected) > 100  # weights, Adam slots, step
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, atol=1e-6, rtol=0, err_msg=f"{name} {where}")
    assert int(got["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) == STEPS
