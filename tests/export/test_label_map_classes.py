"""`kaleido-export --task catepred --label_map L`, as docs/serving.md writes it, takes the class count from the
label map when the checkpoint does not fix it (a finetuned training model_dir of 4 classes exported with its
4-class map; before, a 48-class head was built and the load failed); --num_classes that disagrees is one line."""

import contextlib
import io
import json
import os

import numpy as np
import tensorflow as tf

from kaleido_tf.export import cli
from kaleido_tf.model_zoo import registry
from kaleido_tf.utils.model_dir import TRAINER_MARKER
from tests.export.conftest import TINY, export_info, golden_features, load_golden, signature_inputs

NAMES = {"dresses": 0, "skirts": 1, "shirts": 2, "shoes": 3}


def _run_cli(args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(args)
    return code, out.getvalue(), err.getvalue()


def _four_class_model_dir(tmp_path):
    """A training model_dir as finetune_main writes it: config.json, the trainer marker, a checkpoint."""
    config = registry.config_for(os.path.join(TINY, "model.ckpt-0"))
    model = registry.build_model(config, task="catepred", num_classes=4)
    features = {k: v for k, v in golden_features(load_golden()).items() if k != "img_blank_lm_ids"}
    logits = model(features, training=False)["logits"].numpy()
    model_dir = tmp_path / "catepred"
    model_dir.mkdir()
    config.to_json_file(str(model_dir / "config.json"))
    (model_dir / TRAINER_MARKER).write_text(json.dumps({"task": "catepred"}))
    tf.train.Checkpoint(model=model).save(str(model_dir / "ckpt"))
    return model_dir, features, logits


def test_the_label_map_gives_the_class_count_and_a_disagreeing_count_is_one_line(tmp_path):
    model_dir, features, logits = _four_class_model_dir(tmp_path)
    labels = tmp_path / "category_map.json"
    labels.write_text(json.dumps(NAMES))
    export_dir = tmp_path / "serving"

    code, _, err = _run_cli(
        ["--model", str(model_dir), "--task", "catepred", "--label_map", str(labels), "--num_classes", "48"]
        + ["--export_dir", str(export_dir)]
    )
    assert code == 2
    assert err.strip() == (
        f"kaleido-export: error: --num_classes=48 disagrees with --label_map {labels}, which names 4 classes "
        f"(ids 0 to 3): leave out --num_classes (the label map decides) or give a label map of 48 classes"
    )
    assert not export_dir.exists()

    code, out, err = _run_cli(
        ["--model", str(model_dir), "--task", "catepred", "--label_map", str(labels)]
        + ["--export_dir", str(export_dir), "--no-text_signatures"]
    )
    assert code == 0, err
    path = out.strip().splitlines()[-1]
    assert export_info(path)["class_names"] == ["dresses", "skirts", "shirts", "shoes"]
    signature = tf.saved_model.load(path).signatures["classify"]
    served = signature(**signature_inputs(signature, features))
    np.testing.assert_allclose(served["logits"], logits, atol=1e-5, rtol=0)
    names = [n.decode() for n in served["class_name"].numpy()]
    assert names == [list(NAMES)[i] for i in np.argmax(logits, axis=-1)]
