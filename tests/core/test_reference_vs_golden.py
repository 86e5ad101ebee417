"""The functional reference reproduces the original's golden outputs, so it can referee other sizes."""

import json
import os

import numpy as np

from tests.core import tf1_reference as ref
from tests.core.conftest import golden_features


def test_reference_forward_and_losses_match_golden(golden_case):
    name, directory, golden = golden_case
    cfg = json.load(open(os.path.join(directory, "config.json")))
    weights = ref.load_golden_weights(os.path.join(directory, "model.ckpt-0"))
    feats = golden_features(golden)
    for mode in ("eval", "predict"):
        out = ref.forward(weights, cfg, feats, mode)
        for key in (
            "mlm_logits",
            "nsp_logits",
            "rotation_logits",
            "jigsaw_logits",
            "camouflage_logits",
            "greymask_logits",
            "blankmask_logits",
            "target_raw_blank_features",
            "pooled_output",
        ):
            np.testing.assert_allclose(out[key].numpy(), golden[f"{mode}/{key}"], atol=1e-5, err_msg=f"{mode}/{key}")
    losses = ref.losses(ref.forward(weights, cfg, feats, "eval"), feats, cfg)
    for key, value in losses.items():
        np.testing.assert_allclose(float(value), golden[f"loss/{key}"], atol=1e-5, err_msg=key)


def test_reference_training_matches_golden(golden_case):
    name, directory, golden = golden_case
    cfg = json.load(open(os.path.join(directory, "config.json")))
    weights = ref.load_golden_weights(os.path.join(directory, "model.ckpt-0"))
    steps = len(golden["train/step_losses"])
    after, step_losses, step_lrs = ref.train(
        weights, cfg, golden_features(golden), steps, 1e-3, 10, 0.1, weight_decay=0.01 if name == "tiny_adamw" else 0.0
    )
    np.testing.assert_allclose(step_losses, golden["train/step_losses"], rtol=1e-4)
    np.testing.assert_allclose(step_lrs, golden["train/step_lrs"], rtol=1e-6)
    expected = np.load(os.path.join(directory, "weights_after_train.npz"))
    for key in expected.files:
        tf1 = key.replace("__", "/")[len(ref.PREFIX) :]
        np.testing.assert_allclose(after[tf1], expected[key], atol=1e-5, err_msg=tf1)
