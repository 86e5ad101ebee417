"""Training under MirroredStrategy (2 logical CPUs) and MultiWorkerMirroredStrategy (2 processes on loopback)
ends where one device ends with the same global batch."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(out, *args, env=None, wait=True):
    cmd = [sys.executable, "-m", "tests.engines.train_worker", str(out), *args]
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if not wait:
        return proc
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output[-3000:]
    return np.load(out)


def _weights(result):
    return {k: result[k] for k in result.files if "__" in k}


def _assert_same(a, b, atol=1e-5):
    np.testing.assert_allclose(a["losses"], b["losses"], rtol=1e-5)
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and len(wa) == 75
    for key in wa:
        np.testing.assert_allclose(wa[key], wb[key], atol=atol, rtol=0, err_msg=key)


@pytest.fixture(scope="module")
def single_device(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("single") / "out.npz")


def test_mirrored_over_two_cpus_equals_one_device(single_device, tmp_path):
    mirrored = _run(tmp_path / "out.npz", "--cpu_replicas", "2")
    assert int(mirrored["replicas"]) == 2 and int(single_device["replicas"]) == 1
    assert single_device["losses"][-1] < single_device["losses"][0]  # it trained
    _assert_same(single_device, mirrored)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_end_identical(single_device, tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(
            _run(
                tmp_path / f"w{index}.npz",
                "--model_dir",
                str(tmp_path / "model_dir"),
                env={"TF_CONFIG": tf_config},
                wait=False,
            )
        )
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for p, output in zip(procs, outputs):
        assert p.returncode == 0, output[-3000:]
    w0, w1 = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert int(w0["replicas"]) == 2
    for key in _weights(w0):
        np.testing.assert_array_equal(w0[key], w1[key], err_msg=key)
    _assert_same(single_device, w0)
    # Only the chief keeps checkpoints.
    assert any(f.startswith("ckpt-") for f in os.listdir(tmp_path / "model_dir"))
    assert not any(f.startswith(".worker") for f in os.listdir(tmp_path / "model_dir"))
