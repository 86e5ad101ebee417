"""The speed-ups keep the numbers: ITM-only path, partial last block, one-hot type rows, fused Adam, fused QKV
gradients, mixed precision in the Trainer, and the fast retrieval scorer."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import kaleido_tf
from kaleido_tf.engines import Trainer
from kaleido_tf.engines.fused_adam import FusedAdam, fuse_optimizer
from kaleido_tf.engines.trainer import check_mixed_precision
from kaleido_tf.evaluators.retrieval_fast import ITMScorer, unique_pairs
from kaleido_tf.layers import Encoder
from kaleido_tf.layers.utils import masked_one_hot_rows
from kaleido_tf.model_zoo import KaleidoBERTConfig, KaleidoBERTPretrainModel
from kaleido_tf.optimizers import get_optimizer
from kaleido_tf.tasks import PretrainTask
from tests.conftest import GOLDEN
from tests.core.conftest import golden_dir, golden_features, load_golden

IMAGE_PREFIXES = ("img_feature_convert", "img_loc_position")


@pytest.fixture(scope="module")
def golden_model():
    model = kaleido_tf.from_pretrained(os.path.join(golden_dir("tiny"), "model.ckpt-0"))
    golden = load_golden("tiny")
    return model, golden, {k: tf.constant(v) for k, v in golden_features(golden).items()}


def _config(**overrides):
    return KaleidoBERTConfig.from_json_file(os.path.join(GOLDEN, "tiny", "config.json")).replace(**overrides)


def test_itm_logits_match_the_full_predict_call_and_the_golden_outputs(golden_model):
    model, golden, feats = golden_model
    fast = model.itm_logits(feats)
    full = model(feats, training=False, mode="predict")
    np.testing.assert_allclose(fast["nsp_logits"], full["nsp_logits"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(fast["pooled_output"], full["pooled_output"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(fast["nsp_logits"], golden["predict/nsp_logits"], atol=1e-5, rtol=0)
    # The task's predict step goes through the fast path and returns the same keys.
    out = PretrainTask(model.config).predict_step(feats, model)
    assert set(out) == {"nsp_logits", "pooled_output"}
    np.testing.assert_allclose(out["nsp_logits"], golden["predict/nsp_logits"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("full_mask", [False, True])
def test_encoder_num_outputs_gives_the_first_rows_of_the_full_pass(full_mask):
    rng = np.random.default_rng(0)
    encoder = Encoder(2, 16, 4, 24, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    encoder.build()
    x = tf.constant(rng.normal(size=(3, 7, 16)).astype(np.float32))
    if full_mask:  # a different bias per query row: the first rows must be kept, not broadcast
        bias = tf.constant(rng.choice([0.0, -10000.0], size=(3, 1, 7, 7), p=[0.7, 0.3]).astype(np.float32))
    else:
        bias = tf.constant(np.where(rng.random((3, 1, 1, 7)) < 0.3, -10000.0, 0.0).astype(np.float32))
    full = encoder(x, attention_bias=bias)
    for q in (1, 3):
        part = encoder(x, attention_bias=bias, num_outputs=q)
        assert part.shape == (3, q, 16)
        np.testing.assert_allclose(part, full[:, :q], atol=1e-5, rtol=0)


def test_one_hot_rows_equal_the_gather_with_zeros_outside_the_table():
    rng = np.random.default_rng(1)
    table = tf.Variable(rng.normal(size=(6, 5)).astype(np.float32))
    ids = tf.constant([[0, 5, 6, -1], [2, 2, 9, 1]])
    with tf.GradientTape() as tape:
        rows = masked_one_hot_rows(table, ids)  # one-hot matmul (6 rows)
        loss = tf.reduce_sum(rows * tf.constant(rng.normal(size=(2, 4, 5)).astype(np.float32)))
    grad = tape.gradient(loss, table)
    values = table.numpy()
    want = np.stack([[values[i] if 0 <= i < 6 else np.zeros(5, np.float32) for i in row] for row in ids.numpy()])
    np.testing.assert_array_equal(rows.numpy(), want)
    # A large table takes the gather path: same values, same zeros.
    big = tf.constant(rng.normal(size=(100, 5)).astype(np.float32))
    big_rows = masked_one_hot_rows(big, tf.constant([3, 99, 100, -2])).numpy()
    np.testing.assert_array_equal(big_rows[:2], big.numpy()[[3, 99]])
    np.testing.assert_array_equal(big_rows[2:], 0.0)
    # The gradient reaches exactly the rows that were used (rows 3 and 4 are never looked up).
    assert isinstance(grad, tf.Tensor) and np.all(grad.numpy()[[3, 4]] == 0) and np.any(grad.numpy()[0] != 0)


def test_fused_adam_matches_keras_adam_and_keeps_its_variables():
    rng = np.random.default_rng(2)
    init = [rng.normal(size=s).astype(np.float32) for s in [(4, 6), (6,), (50, 3)]]
    grads = [[rng.normal(size=x.shape).astype(np.float32) for x in init] for _ in range(5)]

    def run(fuse):
        variables = [keras.Variable(x, name=f"w{i}") for i, x in enumerate(init)]
        optimizer = get_optimizer(1e-2, train_steps=10, warmup_ratio=0.2, clip_norm=1.0)
        if fuse:
            optimizer = fuse_optimizer(optimizer)
        optimizer.build(variables)
        apply = tf.function(lambda g: optimizer.apply_gradients(zip(g, variables)))
        for g in grads:
            apply([tf.constant(x) for x in g])
        return optimizer, [v.numpy() for v in variables]

    adam, want = run(False)
    fused, got = run(True)
    assert type(fused) is FusedAdam and int(fused.iterations) == 5
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert [v.path for v in fused.variables] == [v.path for v in adam.variables]
    assert fuse_optimizer(get_optimizer(1e-3, 10, weight_decay=0.01)).__class__.__name__ == "AdamWeightDecay"


def test_fused_qkv_gives_the_same_gradients(golden_model):
    model, _, feats = golden_model
    fused = KaleidoBERTPretrainModel(model.config, fused_qkv=True)
    fused.build()
    fused.set_weights(model.get_weights())
    task = PretrainTask(model.config)
    (la, ga), (lb, gb) = task.compute_gradients(feats, model), task.compute_gradients(feats, fused)
    np.testing.assert_allclose(float(lb["total"]), float(la["total"]), atol=1e-5)
    for a, b, v in zip(ga, gb, model.trainable_variables):
        np.testing.assert_allclose(b, a, atol=1e-5, rtol=1e-4, err_msg=v.path)


def _golden_data(batch=3):
    golden = np.load(os.path.join(GOLDEN, "tiny", "golden.npz"))
    return {k[len("input/") :]: golden[k][:batch] for k in golden.files if k.startswith("input/")}


def _first_step_loss(tmp_path, name, **kwargs):
    keras.utils.set_random_seed(0)
    trainer = Trainer(
        PretrainTask(_config()), str(tmp_path / name), learning_rate=1e-3, train_steps=4, progress=False, **kwargs
    )
    data = _golden_data()
    dataset = trainer.strategy.distribute_datasets_from_function(
        lambda context: tf.data.Dataset.from_tensors(data).repeat()
    )
    fn = trainer.build_train_function(3)
    iterator = iter(dataset)
    logs = [{k: float(v) for k, v in fn(iterator).items()} for _ in range(2)]
    return trainer, logs


def test_mixed_bfloat16_step_runs_close_to_float32(tmp_path):
    _, f32 = _first_step_loss(tmp_path, "f32")
    trainer, bf16 = _first_step_loss(tmp_path, "bf16", mixed_precision="mixed_bfloat16")
    assert trainer.model.compute_dtype == "bfloat16" and trainer.model.variable_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    assert int(trainer.optimizer.iterations) == 2
    for a, b in zip(f32, bf16):
        assert np.isfinite(b["total"])
        assert abs(b["total"] - a["total"]) <= 0.02 * abs(a["total"]) + 0.05, (a["total"], b["total"])


def test_mixed_float16_scales_the_loss_and_skips_overflowing_steps(tmp_path):
    trainer, logs = _first_step_loss(tmp_path, "f16", mixed_precision="mixed_float16")
    assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    assert trainer.model.compute_dtype == "float16"
    assert logs[0]["loss_scale"] == 2.0**15 and all(np.isfinite(log["total"]) for log in logs)
    steps = int(trainer.optimizer.iterations)
    before = [v.numpy() for v in trainer.model.trainable_variables]
    scale = float(trainer.optimizer.dynamic_scale)
    grads = [tf.fill(v.shape, np.inf) for v in trainer.model.trainable_variables]
    applied = tf.function(trainer._apply_scaled_gradients)(grads)
    assert not bool(applied)
    assert float(trainer.optimizer.dynamic_scale) == scale / 2 and int(trainer.optimizer.iterations) == steps
    for a, v in zip(before, trainer.model.trainable_variables):
        np.testing.assert_array_equal(v.numpy(), a)


def test_mixed_precision_argument_is_checked(tmp_path):
    assert check_mixed_precision(None) is None and check_mixed_precision("mixed_bfloat16") == "mixed_bfloat16"
    with pytest.raises(ValueError, match="mixed_precision must be"):
        Trainer(PretrainTask(_config()), str(tmp_path / "bad"), mixed_precision="float8")

    class NoScaleTask(PretrainTask):
        def compute_gradients(self, features, model, global_batch_size=None):
            return super().compute_gradients(features, model, global_batch_size)

    with pytest.raises(ValueError, match="loss_scale"):
        Trainer(NoScaleTask(_config()), str(tmp_path / "noscale"), mixed_precision="mixed_float16")


def _pair_batches(feats, text_rows, image_rows, batch):
    texts = {k: v for k, v in feats.items() if k in ("input_ids", "input_mask", "segment_ids")}
    images = {k: v for k, v in feats.items() if k.startswith(IMAGE_PREFIXES)}
    pairs = {k: v[text_rows] for k, v in texts.items()}
    pairs.update({k: v[image_rows] for k, v in images.items()})
    pairs["text_prod_id"] = np.array([f"t{i}" for i in text_rows])
    pairs["prod_img_id"] = np.array([f"i{i}" for i in image_rows])
    count = len(text_rows)
    return pairs, [{k: v[s : s + batch] for k, v in pairs.items()} for s in range(0, count, batch)]


def test_itm_scorer_reproduces_the_predict_logits_with_each_text_and_image_embedded_once(golden_model):
    model, _, _ = golden_model
    feats = {k: np.asarray(v) for k, v in golden_features(load_golden("tiny")).items()}
    # 3 texts x 3 images, every pair, in a query-major order, scored in batches of 4 (the last one padded).
    text_rows = np.repeat(np.arange(3), 3)
    image_rows = np.tile(np.array([2, 0, 1]), 3)
    pairs, batches = _pair_batches(feats, text_rows, image_rows, batch=5)
    texts, images, text_index, image_index = unique_pairs(batches)
    assert len(texts["input_ids"]) == 3 and len(images["img_feature_convert_rotation"]) == 3
    np.testing.assert_array_equal(texts["input_ids"][text_index], pairs["input_ids"])
    scorer = ITMScorer(model, batch_size=4)
    got = scorer.score(texts, images, text_index, image_index)
    want = model(
        {k: tf.constant(v) for k, v in pairs.items() if not k.endswith("_id")}, training=False, mode="predict"
    )["nsp_logits"].numpy()
    assert got.shape == (9, 2)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(scorer.score_batches(batches), got, atol=1e-6, rtol=0)


def test_itm_scorer_rejects_inconsistent_ids_and_bad_indices(golden_model):
    model, _, _ = golden_model
    feats = {k: np.asarray(v) for k, v in golden_features(load_golden("tiny")).items()}
    _, batches = _pair_batches(feats, np.array([0, 1]), np.array([0, 1]), batch=2)
    batches[0]["prod_img_id"] = np.array(["same", "same"])  # one id, two different images
    with pytest.raises(ValueError, match=r"image prod_img_id='same' was seen before with a different"):
        unique_pairs(batches)
    with pytest.raises(KeyError, match="text_prod_id"):
        unique_pairs([{"prod_img_id": np.array(["a"])}])
    scorer = ITMScorer(model, batch_size=2)
    texts = {"input_ids": feats["input_ids"][:2]}
    images = {k: v[:2] for k, v in feats.items() if k.startswith(IMAGE_PREFIXES)}
    with pytest.raises(ValueError, match="image_index holds 0..5, outside the 2 embedded rows"):
        scorer.score(texts, images, [0, 1], [0, 5])
