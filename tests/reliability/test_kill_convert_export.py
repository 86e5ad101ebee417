"""Conversion and export survive SIGKILL: killed at random moments while replacing an existing output, they
leave the old output or the complete new one, never a part; the next run finishes with the new one and no
temporary directory is left to be trusted."""

import hashlib
import json
import os
import shutil
import signal

import numpy as np
import pytest
import tensorflow as tf

import kaleido_tf
from kaleido_tf.export.exporter import export_saved_model
from kaleido_tf.model_zoo.tf1_conversion import convert_tf1_checkpoint
from tests.conftest import GOLDEN
from tests.core import tf1_reference as ref
from tests.reliability.helpers import hidden_entries, kill_at_random, new_rng, tree_fingerprint

pytestmark = pytest.mark.slow

TINY = os.path.join(GOLDEN, "tiny", "model.ckpt-0")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Two TF1 checkpoints of the tiny model with different weights: A (the golden one) and B."""
    root = tmp_path_factory.mktemp("kill_convert")
    b_dir = root / "b"
    b_dir.mkdir()
    shutil.copy(os.path.join(GOLDEN, "tiny", "config.json"), b_dir / "config.json")
    cfg = json.load(open(os.path.join(GOLDEN, "tiny", "config.json")))
    b = ref.write_tf1_checkpoint(str(b_dir / "model.ckpt-0"), ref.random_weights(cfg, seed=11))
    return root, TINY, b


def _ready(parent, base):
    return lambda: any(name.startswith(f".{base}.") and name.endswith(".tmp") for name in os.listdir(parent))


def test_killed_conversion_leaves_old_or_complete_new(sources):
    root, a, b = sources
    expected = {}
    for name, source in (("A", a), ("B", b)):
        convert_tf1_checkpoint(source, str(root / f"ref_{name}"))
        expected[name] = tree_fingerprint(root / f"ref_{name}")
    assert expected["A"] != expected["B"]

    parent = root / "models"
    out = parent / "converted"
    convert_tf1_checkpoint(a, str(out))
    assert tree_fingerprint(out) == expected["A"]
    # Slow the checkpoint write and the final swap, so random kills land before, inside and after them.
    command = [
        "-m",
        "tests.reliability.slow_child",
        "--slow",
        "kaleido_tf.convert.tf1_converter:write_name_based_checkpoint=0.4",
        "--slow",
        "kaleido_tf.utils.io:_install=0.4",
        "--",
        "kaleido_tf.apps.convert_main",
        f"--tf1_checkpoint={b}",
        f"--output_dir={out}",
    ]
    rng, seed = new_rng()
    seen = []
    for _ in range(3):
        code, output, delay = kill_at_random(command, _ready(parent, "converted"), 1.5, rng)
        state = [name for name, fingerprint in expected.items() if tree_fingerprint(out) == fingerprint]
        where = f"(kill seed {seed}, {delay:.2f} s after the temporary directory appeared, exit {code})"
        assert code in (0, -signal.SIGKILL), output[-3000:]
        assert state, f"{out} holds neither the old nor the new conversion {where}: {tree_fingerprint(out)}"
        seen.append((code, state[0]))
        if code == 0:
            assert state == ["B"], where

    assert any(code == -signal.SIGKILL for code, _ in seen), f"no kill landed (kill seed {seed}): {seen}"
    report = convert_tf1_checkpoint(b, str(out))  # the next run: recovers, then replaces
    assert len(report.assigned) == 75
    assert tree_fingerprint(out) == expected["B"]
    assert hidden_entries(parent) == [], f"temporary directories left: {hidden_entries(parent)} (seen {seen})"
    model = kaleido_tf.from_pretrained(str(out))
    assert model.config.hidden_size == 32


def _export_weights(version_dir):
    """The weights of a complete export (see _saved_weights), 'missing', or what makes it incomplete."""
    if not os.path.exists(version_dir):
        return "missing"
    info = os.path.join(version_dir, "assets.extra", "kaleido_export.json")
    for required in ("saved_model.pb", os.path.join("variables", "variables.index"), info):
        if not os.path.exists(os.path.join(version_dir, required)):
            return f"incomplete: {required} is missing"
    json.load(open(info))
    return _saved_weights(version_dir)


def _saved_weights(version_dir):
    """The SavedModel's variable values as a sorted list of (shape, digest): the numbering of the saved
    variables is not stable from one export to the next, their values are."""
    reader = tf.train.load_checkpoint(os.path.join(version_dir, "variables", "variables"))
    values = (np.asarray(reader.get_tensor(n)) for n in reader.get_variable_to_shape_map() if "OBJECT_GRAPH" not in n)
    return sorted((v.shape, hashlib.sha256(v.tobytes()).hexdigest()) for v in values)


def test_killed_export_leaves_old_or_complete_new(sources):
    root, a, b = sources
    export_dir = root / "serving"
    version_dir = str(export_dir / "1")
    export_saved_model(kaleido_tf.from_pretrained(a), str(export_dir), version=1, text_signatures=False)
    old = _export_weights(version_dir)
    assert isinstance(old, list) and len(old) > 70

    # Replace version 1 with model B in a child killed at a random moment around the final swap.
    command = [
        "-m",
        "tests.reliability.slow_child",
        "--slow",
        "kaleido_tf.utils.io:_install=0.5",
        "--",
        "kaleido_tf.export.cli",
        "--model",
        b,
        "--export_dir",
        str(export_dir),
        "--version",
        "1",
        "--overwrite",
        "--no-text_signatures",
    ]
    rng, seed = new_rng()
    code, output, delay = kill_at_random(command, _ready(export_dir, "1"), 1.5, rng)
    where = f"(kill seed {seed}, {delay:.2f} s after the temporary directory appeared, exit {code})"
    assert code in (0, -signal.SIGKILL), output[-3000:]
    after_kill = _export_weights(version_dir)
    assert sorted(os.listdir(export_dir)) == sorted(["1"] + hidden_entries(export_dir))  # version 1 only

    export_saved_model(
        kaleido_tf.from_pretrained(b), str(export_dir), version=1, overwrite=True, text_signatures=False
    )  # the next run
    new = _export_weights(version_dir)
    assert isinstance(new, list) and new != old
    assert after_kill in (old, new), f"{after_kill if isinstance(after_kill, str) else 'other weights'} {where}"
    assert code != 0 or after_kill == new, where
    assert os.listdir(export_dir) == ["1"], f"temporary directories left {where}"
