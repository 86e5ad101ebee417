"""Training with the ITC loss under MirroredStrategy (2 logical CPUs) and MultiWorkerMirroredStrategy (2
processes on loopback) ends where one device ends with the same global batch; the two workers end identical."""

import os

import numpy as np
import pytest

from tests.engines.workers import one_device_and_mirrored, two_workers, weights

WEIGHTS = 80  # the tiny golden model's 75 and the ITC head's 5
ITC_HEAD = 5


def _losses(result):
    return {k: result[k] for k in result.files if k.startswith("loss:") and k != "loss:examples_per_second"}


def _assert_same(a, b, atol=1e-5):
    la, lb = _losses(a), _losses(b)
    assert la.keys() == lb.keys() and "loss:itc_loss" in la and "loss:total" in la
    for key in la:
        np.testing.assert_allclose(la[key], lb[key], rtol=1e-5, err_msg=key)
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys() and len(wa) == WEIGHTS
    for key in wa:
        np.testing.assert_allclose(wa[key], wb[key], atol=atol, rtol=0, err_msg=key)


def _assert_itc_trained(result):
    """The ITC loss was optimised: positive, and every weight of the fresh ITC head moved."""
    assert np.all(result["loss:itc_loss"] > 0)
    initial = {k[len("init:") :]: result[k] for k in result.files if k.startswith("init:")}
    assert len(initial) == ITC_HEAD and all("itc_head" in k for k in initial)
    for key, value in initial.items():
        assert np.abs(result[f"w:{key}"] - value).max() > 1e-4, key


def test_mirrored_over_two_cpus_equals_one_device(tmp_path_factory):
    one_device, mirrored = one_device_and_mirrored(tmp_path_factory)
    assert int(mirrored["replicas"]) == 2 and int(one_device["replicas"]) == 1
    assert one_device["loss:total"][-1] < one_device["loss:total"][0]  # it trained
    _assert_itc_trained(one_device)
    _assert_same(one_device, mirrored)


@pytest.mark.slow
def test_two_workers_end_identical(tmp_path_factory):
    one_device, _ = one_device_and_mirrored(tmp_path_factory)
    run = two_workers(tmp_path_factory)
    w0, w1 = np.load(run / "w-0.npz"), np.load(run / "w-1.npz")
    assert int(w0["replicas"]) == int(w1["replicas"]) == 2
    for key in weights(w0):
        np.testing.assert_array_equal(w0[key], w1[key], err_msg=key)
    _assert_itc_trained(w0)
    _assert_same(one_device, w0)
    # Only the chief keeps checkpoints.
    assert any(f.startswith("ckpt-") for f in os.listdir(run / "model_dir"))
    assert not any(f.startswith(".worker") for f in os.listdir(run / "model_dir"))
