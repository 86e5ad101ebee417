"""The ITC loss over the global batch: 2 and 4 MirroredStrategy replicas (logical CPUs) give the same loss and
the same summed gradients (hence the same weights after a step) as one device (two processes: the one-device
run shares the 2-replica one's)."""

import os
import subprocess
import sys

import numpy as np

from tests.engines.itc_worker import PROCESSES, REPLICAS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_itc_loss_and_gradients_do_not_depend_on_the_replica_count(tmp_path):
    procs = {
        i: subprocess.Popen(
            [sys.executable, "-m", "tests.engines.itc_worker", str(tmp_path / f"itc{i}.npz"), ",".join(map(str, n))],
            cwd=ROOT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i, n in enumerate(PROCESSES)
    }
    r = {}
    for i, proc in procs.items():
        output, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, output[-3000:]
        with np.load(tmp_path / f"itc{i}.npz") as part:
            r.update({k: part[k] for k in part.files})
    assert [int(r[f"replicas_{n}"]) for n in REPLICAS] == list(REPLICAS)
    # The one-device loss is the symmetric InfoNCE of the whole batch's embeddings.
    logits = r["text_embedding_1"] @ r["image_embedding_1"].T / r["temperature_1"]  # [8, 8]

    def cross_entropy(z):
        z = z - z.max(-1, keepdims=True)
        return -np.mean(np.diag(z) - np.log(np.exp(z).sum(-1)))

    want = 0.5 * (cross_entropy(logits) + cross_entropy(logits.T))
    np.testing.assert_allclose(float(r["loss_1"]), want, rtol=1e-5)
    names = sorted(k.split("__", 1)[1] for k in r if k.startswith("grad_1__"))
    assert len(names) > 10 and any("itc_head" in n for n in names)
    # Every weight the ITC loss reads gets a gradient (the patch and text parts of the backbone, the head).
    assert np.any(r["grad_1__" + next(n for n in names if "temperature" in n)])
    for n in REPLICAS[1:]:
        np.testing.assert_allclose(r[f"loss_{n}"], r["loss_1"], atol=1e-6, rtol=0, err_msg=f"{n} replicas")
        for name in names:
            np.testing.assert_allclose(
                r[f"grad_{n}__{name}"], r[f"grad_1__{name}"], atol=1e-5, rtol=0, err_msg=f"{n} replicas: {name}"
            )
        # A wrong share (the local mean, or a gather without its gradient) would change the gradients by far more.
        step = {name: r[f"grad_1__{name}"] for name in names}
        assert max(float(np.abs(g).max()) for g in step.values()) > 1e-3
