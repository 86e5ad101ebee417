"""Starting the tiny golden model's trainings (tests/engines/train_worker.py) in their own processes: N
MultiWorkerMirroredStrategy workers on loopback, or one process; and the runs several tests compare against,
computed once per test session.

Each process costs seconds of TensorFlow start-up and tracing, so the reference runs are shared: `two_workers`
and `one_device_and_mirrored` run once per test session, also across pytest-xdist's worker processes (the first
test to need one runs it under a file lock, the others wait for it and read its files).
"""

import json
import socket

import numpy as np

from tests.reliability.helpers import finish, start
from tests.session_once import once_per_session

STEPS = 6  # every training of the golden model here, interrupted or not
WORKER = "tests.engines.train_worker"


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_training(model_dir, *args, **env):
    """One training process of `STEPS` steps on `model_dir` (train_worker's other flags in `args`)."""
    return start(["-m", WORKER, str(model_dir), f"--steps={STEPS}", *args], **env)


def start_workers(model_dir, *args, workers=2, out=None, progress=None):
    """`workers` processes of one MultiWorkerMirroredStrategy training on loopback; worker i saves its result
    to `{out}-{i}.npz` and touches `{progress}-{i}` after its first step (when given)."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(workers)]}
    procs = []
    for index in range(workers):
        extra = list(args)
        if out is not None:
            extra.append(f"--out={out}-{index}.npz")
        if progress is not None:
            extra.append(f"--progress={progress}-{index}")
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(start_training(model_dir, *extra, TF_CONFIG=tf_config))
    return procs


def finish_all(procs, timeout=600):
    """[(return code, output)] of each process, in order."""
    return [finish(p, timeout=timeout) for p in procs]


def assert_finished(results, what):
    for index, (code, out) in enumerate(results):
        assert code == 0, f"{what} {index}\n{out[-3000:]}"
        assert f"finished at step {STEPS}" in out, f"{what} {index}\n{out[-3000:]}"


def weights(result):
    return {k: result[k] for k in result.files if k.startswith("w:")}


# ---------------------------------------------------------------------------------------------- shared runs
def _two_workers(directory):
    results = finish_all(start_workers(directory / "model_dir", out=directory / "w"))
    assert_finished(results, "reference worker")


def two_workers(tmp_path_factory):
    """The uninterrupted two-worker training: its directory, with `model_dir/` (the chief's checkpoints) and
    `w-0.npz`, `w-1.npz` (each worker's final weights and step losses)."""
    return once_per_session(tmp_path_factory, "two_workers", _two_workers)


def _one_device_and_mirrored(directory):
    process = start_training(
        directory / "model_dir",
        "--cpu_replicas=2",
        f"--out={directory / 'mirrored.npz'}",
        f"--one_device_out={directory / 'one_device.npz'}",
    )
    code, out = finish(process, timeout=600)
    assert code == 0 and out.count(f"finished at step {STEPS}") == 2, out[-3000:]


def one_device_and_mirrored(tmp_path_factory):
    """(one device, MirroredStrategy over 2 logical CPUs): the same training in one process, loaded .npz."""
    directory = once_per_session(tmp_path_factory, "one_device_and_mirrored", _one_device_and_mirrored)
    return np.load(directory / "one_device.npz"), np.load(directory / "mirrored.npz")
