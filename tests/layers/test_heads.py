"""MLMHead, PatchClassificationHead, PatchReconstructionHead: the shared layer checks and NumPy references."""

import numpy as np
import tensorflow as tf

from kaleido_tf.layers import LAYER_NORM_EPSILON, MLMHead, PatchClassificationHead, PatchReconstructionHead
from tests.harness import run_layer_test

B, T, H, V, P = 2, 6, 8, 20, 3


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def _layer_norm(x):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + LAYER_NORM_EPSILON)


def _gather(sequence, positions):  # [B, S, H] at [B, P] -> [B * P, H]
    return np.concatenate([sequence[b, positions[b]] for b in range(sequence.shape[0])])


def test_mlm_head_checks_and_reference(tmp_path):
    rng = np.random.default_rng(0)
    sequence = tf.constant(rng.normal(size=(B, T, H)).astype(np.float32))
    positions = tf.constant([[0, 4, 4], [5, 1, 2]], tf.int32)
    table = tf.constant(rng.normal(size=(V, H)).astype(np.float32))
    kwargs = {"vocab_size": V, "hidden_size": H, "initializer_range": 0.5, "activation": "gelu"}
    layer, logits = run_layer_test(
        MLMHead, kwargs, (sequence, positions, table), (B * P, V), tmp_path, expected_num_trainable_weights=5
    )
    dense = layer.transform_dense
    hidden = _layer_norm(
        _gelu_tanh(_gather(sequence.numpy(), positions.numpy()) @ dense.kernel.numpy() + dense.bias.numpy())
    )
    want = hidden @ table.numpy().T + layer.output_bias.numpy()
    np.testing.assert_allclose(logits.numpy(), want, atol=1e-4, rtol=0)
    # The two picks of position 4 in example 0 give the same logits.
    np.testing.assert_array_equal(logits.numpy()[1], logits.numpy()[2])


def test_patch_classification_head_checks_and_reference(tmp_path):
    n, labels = 4, 3
    level = tf.constant(np.random.default_rng(1).normal(size=(B, n, H)).astype(np.float32))
    kwargs = {"num_patches": n, "hidden_size": H, "num_labels": labels, "initializer_range": 0.5}
    layer, logits = run_layer_test(
        PatchClassificationHead, kwargs, level, (B, labels), tmp_path, expected_num_trainable_weights=2
    )
    want = level.numpy().reshape(B, n * H) @ layer.output_weights.numpy().T + layer.output_bias.numpy()
    np.testing.assert_allclose(logits.numpy(), want, atol=1e-5, rtol=0)
    # One patch on a [B, H] input (the image-text matching head on the pooled output).
    itm = PatchClassificationHead(1, H, 2)
    assert tuple(itm(level[:, 0]).shape) == (B, 2)


def test_patch_reconstruction_head_checks_and_reference(tmp_path):
    n, k, F = 5, 2, 7
    level = tf.constant(np.random.default_rng(2).normal(size=(B, n, H)).astype(np.float32))
    ids = tf.constant([[4, 0], [1, 1]], tf.int32)
    kwargs = {"hidden_size": H, "patch_feature_size": F, "initializer_range": 0.5}
    layer, predicted = run_layer_test(
        PatchReconstructionHead, kwargs, (level, ids), (B * k, F), tmp_path, expected_num_trainable_weights=1
    )
    want = _gather(level.numpy(), ids.numpy()) @ layer.output_weights.numpy()
    np.testing.assert_allclose(predicted.numpy(), want, atol=1e-5, rtol=0)
