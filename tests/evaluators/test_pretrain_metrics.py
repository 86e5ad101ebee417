"""Streaming pretraining accuracies against a numpy computation, eager, in tf.function and mirrored."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from kaleido_tf.evaluators.pretrain import PRETRAIN_TASKS, PretrainMetrics, pretrain_metric_values

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
B, P, V = 6, 4, 11  # batch, masked positions, vocabulary
CLASSES = {"rotation": 4, "jigsaw": 24, "camouflage": 9}


def make_batch(seed, rotation_key="img_rotate_gt"):
    rng = np.random.default_rng(seed)
    outputs = {
        "mlm_logits": rng.normal(size=(B * P, V)).astype(np.float32),
        "nsp_logits": rng.normal(size=(B, 2)).astype(np.float32),
    }
    features = {
        "masked_lm_ids": rng.integers(0, V, size=(B, P)).astype(np.int32),
        "masked_lm_weights": (rng.random((B, P)) < 0.6).astype(np.float32),
        "nx_sent_labels": rng.integers(0, 2, size=(B, 1)).astype(np.int32),
    }
    # Make some predictions right on purpose so accuracies are not all near chance.
    hit = rng.random(B * P) < 0.5
    ids = features["masked_lm_ids"].reshape(-1)
    outputs["mlm_logits"][hit, ids[hit]] += 10.0
    for task, classes in CLASSES.items():
        outputs[f"{task}_logits"] = rng.normal(size=(B, classes)).astype(np.float32)
        key = rotation_key if task == "rotation" else f"img_{task}_gt"
        features[key] = rng.integers(0, classes, size=(B, 1)).astype(np.int32)
    return outputs, features


def numpy_counts(outputs, features):
    """(correct, count) per task, written directly in numpy."""
    rotation = features.get("img_rotate_gt", features.get("img_rotation_gt"))
    weights = features["masked_lm_weights"].reshape(-1)
    mlm_hits = np.argmax(outputs["mlm_logits"], axis=-1) == features["masked_lm_ids"].reshape(-1)
    out = {"mlm": (float((mlm_hits * weights).sum()), float(weights.sum()))}
    pairs = {
        "itm": ("nsp_logits", features["nx_sent_labels"]),
        "rotation": ("rotation_logits", rotation),
        "jigsaw": ("jigsaw_logits", features["img_jigsaw_gt"]),
        "camouflage": ("camouflage_logits", features["img_camouflage_gt"]),
    }
    for task, (name, labels) in pairs.items():
        hits = np.argmax(outputs[name], axis=-1) == labels.reshape(-1)
        out[task] = (float(hits.sum()), float(hits.size))
    return out


@pytest.mark.parametrize("rotation_key", ["img_rotate_gt", "img_rotation_gt"])
def test_batch_values_match_numpy(rotation_key):
    outputs, features = make_batch(0, rotation_key)
    values = pretrain_metric_values(outputs, features)
    expected = numpy_counts(outputs, features)
    assert set(values) == set(PRETRAIN_TASKS)
    for task, (correct, count) in expected.items():
        assert float(values[task][0]) == pytest.approx(correct), task
        assert float(values[task][1]) == pytest.approx(count), task
    assert 0 < expected["mlm"][0] < expected["mlm"][1] < B * P  # weights and hits both matter


def test_streaming_in_tf_function_matches_numpy():
    metric = PretrainMetrics()
    update = tf.function(metric.update_state)
    batches = [make_batch(seed) for seed in range(3)]
    for outputs, features in batches:
        update(outputs, features)
    totals = {task: [0.0, 0.0] for task in PRETRAIN_TASKS}
    for outputs, features in batches:
        for task, (c, n) in numpy_counts(outputs, features).items():
            totals[task][0] += c
            totals[task][1] += n
    result = metric.result()
    assert set(result) == {f"{t}_accuracy" for t in PRETRAIN_TASKS}
    for task, (c, n) in totals.items():
        assert float(result[f"{task}_accuracy"]) == pytest.approx(c / n, rel=1e-6), task
    metric.reset_state()
    assert all(float(v) == 0.0 for v in metric.result().values())


def test_missing_tasks_are_left_alone_and_explicit_ones_raise():
    outputs, features = make_batch(4)
    metric = PretrainMetrics(tasks=("itm", "jigsaw"))
    assert len(metric.variables) == 4
    metric.update_state({"nsp_logits": outputs["nsp_logits"]}, features)
    counts = {k: (float(c), float(n)) for k, (c, n) in metric.counts().items()}
    assert counts["jigsaw"] == (0.0, 0.0)
    assert counts["itm"] == numpy_counts(outputs, features)["itm"]
    with pytest.raises(ValueError, match="needs 'jigsaw_logits'"):
        pretrain_metric_values({"nsp_logits": outputs["nsp_logits"]}, features, tasks=("jigsaw",))
    with pytest.raises(ValueError, match="unknown pretraining tasks"):
        PretrainMetrics(tasks=("mlm", "colour"))


def test_shape_mismatch_names_the_feature():
    outputs, features = make_batch(5)
    features["img_jigsaw_gt"] = features["img_jigsaw_gt"][:3]
    with pytest.raises(ValueError, match="img_jigsaw_gt holds 3 labels but jigsaw_logits has 6 rows"):
        pretrain_metric_values(outputs, features)
    outputs, features = make_batch(5)
    features["masked_lm_weights"] = features["masked_lm_weights"][:, :2]
    with pytest.raises(ValueError, match="masked_lm_weights holds 12 weights"):
        pretrain_metric_values(outputs, features)


def test_config_round_trip():
    metric = PretrainMetrics(tasks=("mlm", "rotation"), name="pt")
    clone = PretrainMetrics.from_config(metric.get_config())
    assert clone.tasks == ("mlm", "rotation") and clone.name == "pt"


MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, sys.argv[1])
    sys.path.insert(0, sys.argv[2])
    from test_pretrain_metrics import make_batch, numpy_counts, B, P
    from kaleido_tf.evaluators.pretrain import PretrainMetrics

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        metric = PretrainMetrics()
    batches = [make_batch(seed) for seed in range(2)]
    outputs = {k: np.concatenate([b[0][k] for b in batches]) for k in batches[0][0]}
    features = {k: np.concatenate([b[1][k] for b in batches]) for k in batches[0][1]}
    per_example = dict(outputs, mlm_logits=outputs["mlm_logits"].reshape(2 * B, P, -1))
    dataset = tf.data.Dataset.from_tensor_slices((per_example, features)).batch(4)

    @tf.function
    def step(o, f):
        strategy.run(metric.update_state, args=(o, f))

    for o, f in strategy.experimental_distribute_dataset(dataset):
        step(o, f)
    got = {k: [float(c), float(n)] for k, (c, n) in metric.counts().items()}
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "got": got,
                      "expected": numpy_counts(outputs, features)}))
""")


def test_mirrored_strategy_sums_replicas(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, REPO_ROOT, os.path.dirname(__file__)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    for task, (c, n) in report["expected"].items():
        assert report["got"][task] == pytest.approx([c, n]), task
