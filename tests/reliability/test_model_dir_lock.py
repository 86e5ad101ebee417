"""One training per --model_dir: a second writer is refused at once, naming the first's process; the lock of a
process killed with SIGKILL goes with it."""

import os
import signal
import subprocess
import sys
import time

import pytest

from kaleido_tf.engines import model_dir_lock
from tests.apps.tiny_data import write_tiny_bundle
from tests.reliability.helpers import ROOT, child_env, run
from tests.reliability.training_runs import train_command

HOLD = (
    "import sys, time\n"
    "from kaleido_tf.engines import model_dir_lock\n"
    "model_dir_lock.acquire(sys.argv[1])\n"
    "print('locked', flush=True)\n"
    "time.sleep(600)\n"
)


def _holder(model_dir):
    """A real process holding the lock of `model_dir` (started and locked when this returns)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(model_dir)],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "locked"
    return process


def _try_lock_in_child(model_dir):
    code = "import sys\nfrom kaleido_tf.engines import model_dir_lock\nmodel_dir_lock.acquire(sys.argv[1])\nprint('ok')"
    return subprocess.run(
        [sys.executable, "-c", code, str(model_dir)], cwd=ROOT, env=child_env(), capture_output=True, text=True
    )


def test_second_process_is_refused_naming_the_first_and_sigkill_frees_the_lock(tmp_path):
    holder = _holder(tmp_path / "run")
    try:
        record = model_dir_lock.read_holder(tmp_path / "run")
        assert record["pid"] == holder.pid and record["host"] and "-c" in record["command"]
        refused = _try_lock_in_child(tmp_path / "run")
        assert refused.returncode != 0 and "ModelDirBusyError" in refused.stderr
        assert f"is in use by process {holder.pid} on " in refused.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    started = time.time()
    taken = _try_lock_in_child(tmp_path / "run")
    assert taken.returncode == 0 and taken.stdout.strip() == "ok", taken.stderr
    assert time.time() - started < 60
    assert model_dir_lock.read_holder(tmp_path / "run")["pid"] != holder.pid  # the new holder's record


def test_lock_is_reentrant_within_a_process_and_released_by_the_last_user(tmp_path):
    model_dir_lock.acquire(tmp_path)
    model_dir_lock.acquire(tmp_path)
    model_dir_lock.release(tmp_path)
    assert _try_lock_in_child(tmp_path).returncode != 0  # still held once
    model_dir_lock.release(tmp_path)
    assert _try_lock_in_child(tmp_path).returncode == 0


@pytest.mark.slow
def test_second_training_on_one_model_dir_is_refused_before_any_write(tmp_path):
    list_file, schema, _ = write_tiny_bundle(tmp_path / "data", "pretrain", num_examples=8, num_files=1)
    model_dir = tmp_path / "model"
    # two steps, not the reference run's 13: this training is compared with none, only refused and then let run
    command = train_command(list_file, schema, model_dir, "--train_steps=2")
    holder = _holder(model_dir)  # the first training (as far as the lock is concerned)
    try:
        code, out = run(command)
        assert code == 2, out[-3000:]
        assert f"error: --model_dir {model_dir} is in use by process {holder.pid} on " in out, out[-3000:]
        assert "Traceback" not in out
        assert sorted(os.listdir(model_dir)) == ["train.lock"]  # nothing of the second run was written
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    code, out = run(command)  # the first is gone (kill -9): a new one starts at once
    assert code == 0 and "finished at step 2" in out, out[-3000:]
