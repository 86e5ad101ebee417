"""`finetune_main --task=caption` end to end on tiny finetune bundles: train_and_evaluate, predict, export."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from kaleido_tf.apps import finetune_main
from kaleido_tf.apps.runner import main_wrapper
from tests.caption.caption_data import CAPTIONS, TINY_CHECKPOINT, write_caption_bundle


def _run(args):
    flags = finetune_main.FLAGS
    flags.unparse_flags()
    flags(["finetune_main", "--task=caption", "--progress=false", "--log_steps=5", *args])
    return main_wrapper(finetune_main.main)([])


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("caption_app")
    train, schema, _ = write_caption_bundle(tmp / "train", 16, seed=0)
    valid, _, valid_examples = write_caption_bundle(tmp / "valid", 6, seed=1)
    return tmp, train, valid, schema, valid_examples


@pytest.fixture(scope="module")
def trained_dir(bundles, vocab_file):
    tmp, train, valid, schema, _ = bundles
    model_dir = tmp / "model"
    code = _run(
        [
            "--mode=train_and_evaluate",
            f"--train_input_fp={train}",
            f"--eval_input_fp={valid}",
            f"--input_schema={schema}",
            f"--pretrain_model_name_or_path={TINY_CHECKPOINT}",
            f"--vocab_file={vocab_file}",
            f"--model_dir={model_dir}",
            "--train_batch_size=8",
            "--eval_batch_size=4",
            "--train_steps=12",
            "--learning_rate=3e-3",
            "--max_caption_length=12",
        ]
    )
    assert code == 0
    return model_dir


def test_train_and_evaluate(trained_dir, capsys):
    results = json.loads((trained_dir / "eval_results.json").read_text())
    assert results["step"] == 12 and results["examples"] == 6
    for key in ("loss", "bleu_4", "meteor", "rouge_l", "cider"):
        assert np.isfinite(results[key]), key
    assert 0 <= results["bleu_4"] <= 100 and results["loss"] < 4.8  # below the untrained loss (about 4.8)
    marker = json.loads((trained_dir / "kaleido_tf_trainer.json").read_text())
    assert marker["task"] == "caption"


def test_predict_writes_one_caption_per_image(bundles, trained_dir, vocab_file, capsys):
    tmp, _, valid, schema, examples = bundles
    out_dir = tmp / "predict"
    code = _run(
        [
            "--mode=predict",
            f"--predict_input_fp={valid}",
            f"--input_schema={schema}",
            f"--model_dir={trained_dir}",
            f"--vocab_file={vocab_file}",
            f"--output_dir={out_dir}",
            "--predict_batch_size=4",
            "--beam_size=2",
            "--max_caption_length=12",
        ]
    )
    assert code == 0
    lines = (out_dir / "captions.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["prod_img_id", "image_prod_id", "caption", "reference"]
    rows = [line.split("\t") for line in lines[1:]]
    assert [r[0] for r in rows] == [ex["prod_img_id"][0].decode() for ex in examples]
    assert all(len(r) == 4 for r in rows)
    references = {c.replace(" ##", "") for c in CAPTIONS}
    assert all(r[3] in references for r in rows)
    metrics = json.loads((out_dir / "captions_metrics.json").read_text())
    assert metrics["images"] == 6 and set(metrics) >= {"bleu_4", "meteor", "rouge_l", "cider"}
    assert "CIDEr:" in capsys.readouterr().out


def test_export_mode_and_bad_flags(bundles, trained_dir, vocab_file, capsys):
    tmp = bundles[0]
    code = _run(
        [
            "--mode=export",
            f"--model_dir={trained_dir}",
            f"--vocab_file={vocab_file}",
            f"--export_dir={tmp / 'export'}",
            "--max_caption_length=6",
        ]
    )
    assert code == 0
    loaded = tf.saved_model.load(str(tmp / "export" / "1"))
    assert set(loaded.signatures) == {"caption", "serving_default"}
    assert loaded.signatures["caption"].structured_outputs["token_ids"].shape.as_list() == [None, 6]
    # kaleido-export --task caption: beam search, the generation settings in the export metadata.
    from kaleido_tf.export.cli import main as export_main

    assert (
        export_main(
            [
                "--model",
                str(trained_dir),
                "--task",
                "caption",
                "--vocab_file",
                vocab_file,
                "--export_dir",
                str(tmp / "export_cli"),
                "--beam_size",
                "2",
                "--max_caption_length",
                "5",
            ]
        )
        == 0
    )
    info = json.loads((tmp / "export_cli" / "1" / "assets.extra" / "kaleido_export.json").read_text())
    assert info["caption"]["beam_size"] == 2 and info["caption"]["max_length"] == 5
    assert info["caption"]["special_ids"]["sep_id"] == 3
    # The packaged BERT vocab does not fit the tiny model: one clear line, exit status 2.
    code = _run(
        [
            "--mode=predict",
            f"--model_dir={trained_dir}",
            f"--output_dir={tmp / 'x'}",
            f"--predict_input_fp={bundles[2]}",
            f"--input_schema={bundles[3]}",
        ]
    )
    assert code == 2 and "pass vocab_file" in capsys.readouterr().err
    assert not os.path.exists(tmp / "x" / "captions.tsv")
