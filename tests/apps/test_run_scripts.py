"""The run scripts, end to end on small generated data in the original TSV format, as a user runs them from
the repository root (dataset/ in, checkpoints/ out). run_subcat.sh and run_t2i.sh differ from run_cat.sh and
run_i2t.sh only in the task, direction and file prefix they hand the common script: their command lines are
compared with those of the two that run end to end (each end-to-end run costs a TensorFlow process)."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from kaleido_tf.evaluators.retrieval import score_retrieval
from kaleido_tf.evaluators.retrieval_format import read_retrieval_results
from tests.apps.tiny_data import schema_string, write_tiny_bundle
from tests.conftest import GOLDEN
from tests.session_once import once_per_session

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _place(tmp, kind, dest_dir, names, **kwargs):
    """Writes a bundle and renames its data files to the names the scripts list."""
    src = tmp / f"src_{kind}_{names[0]}"
    kwargs.setdefault("num_files", len(names))
    list_file, _, examples = write_tiny_bundle(src, kind, **kwargs)
    os.makedirs(dest_dir, exist_ok=True)
    for i, name in enumerate(names):
        shutil.move(str(src / f"part_{i:03d}.tsv"), os.path.join(dest_dir, name))
    return examples


def _script(project, name, env, *args):
    full_env = {
        **os.environ,
        "PYTHON": sys.executable,
        "WORKER_GPU": "1",
        "INPUT_SEQUENCE_LENGTH": "16",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": ROOT,
        **env,
    }
    done = subprocess.run(
        ["bash", os.path.join(ROOT, "scripts", name), "--progress=false", "--log_steps=1", *args],
        cwd=project,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done.stdout


def _pretrained_project(tmp):
    """Writes the project's dataset/ and runs run_pretrain.sh in it (its output in pretrain_output.txt)."""
    data = tmp / "dataset"
    _place(tmp, "pretrain", data / "pretrain", ["pretrain_train__a", "pretrain_train__b"], num_examples=16)
    _place(tmp, "pretrain", data / "pretrain", ["pretrain_valid__a"], num_examples=8, num_files=1, seed=1)
    _place(tmp, "finetune", data / "finetune", ["finetune_train__a"], num_examples=16, num_files=1, seed=2)
    _place(tmp, "finetune", data / "finetune", ["finetune_valid__a"], num_examples=8, num_files=1, seed=3)
    _place(
        tmp,
        "retrieval",
        data / "retrieve",
        ["retrieve_i2t__a"],
        num_examples=15,
        num_files=1,
        seed=4,
        direction="img2txt",
    )
    _place(tmp, "retrieval", data / "retrieve", ["retrieve_t2i__a"], num_examples=15, num_files=1, seed=5)
    out = _script(
        tmp,
        "run_pretrain.sh",
        {
            "PRETRAIN_MODEL": os.path.join(GOLDEN, "tiny", "model.ckpt-0"),
            "INPUT_SCHEMA": schema_string("pretrain"),
            "TRAIN_BATCH_SIZE": "4",
            "NUM_EPOCHS": "2",
            "LEARNING_RATE": "1e-3",
        },
    )
    (tmp / "pretrain_output.txt").write_text(out)


@pytest.fixture(scope="session")
def project(tmp_path_factory):
    """The project directory, pretrained once per session: the other scripts start from its checkpoints/pretrained
    (each writes its own files beside, so tests on several workers share it)."""
    return once_per_session(tmp_path_factory, "run_scripts_project", _pretrained_project)


@pytest.fixture
def pretrained(project):
    return (project / "pretrain_output.txt").read_text()


def test_run_pretrain(project, pretrained):
    assert "16 training examples x 2 epochs / global batch 4 -> 9 steps" in pretrained
    assert "loaded 75 variables from" in pretrained
    model_dir = project / "checkpoints" / "pretrained"
    assert (model_dir / "ckpt-9.index").exists() and (model_dir / "config.json").exists()
    results = json.loads((model_dir / "eval_results.json").read_text())
    assert results["step"] == 9 and 0 <= results["itm_accuracy"] <= 1 and np.isfinite(results["total"])
    assert os.listdir(model_dir / "train") and os.listdir(model_dir / "eval")
    assert (project / "dataset" / "train_list.list_csv").read_text().count("pretrain_train__") == 2


def _recorded_command(tmp, name, env, *args):
    """The command line a script runs, with a PYTHON that writes its arguments (one per line) and exits 0."""
    record = tmp / f"{name}.argv"
    recorder = tmp / "record_python.sh"
    recorder.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$RECORD"\n')
    recorder.chmod(0o755)
    _script(tmp, name, {**env, "PYTHON": str(recorder), "RECORD": str(record)}, *args)
    return record.read_text().splitlines()


FINETUNE_ENV = {"TRAIN_BATCH_SIZE": "4", "NUM_EPOCHS": "1", "LEARNING_RATE": "1e-3"}
RETRIEVAL_ENV = {"PREDICT_BATCH_SIZE": "4"}


def test_subcat_and_t2i_scripts_run_the_command_of_their_sibling_with_their_own_task(tmp_path):
    """run_subcat.sh and run_t2i.sh run the command of run_cat.sh and run_i2t.sh (which the tests below run end
    to end) with their own task, direction and file prefix, and nothing else changed."""
    for kind in ("finetune", "retrieve"):
        (tmp_path / "dataset" / kind).mkdir(parents=True)
    for name in ("finetune_train__a", "finetune_valid__a", "retrieve_i2t__a", "retrieve_t2i__a"):
        (tmp_path / "dataset" / name.split("_")[0] / name).write_text("")
    pairs = [
        (
            "run_cat.sh",
            "run_subcat.sh",
            "finetune_main",
            FINETUNE_ENV,
            {"catepred": "subcatepred"},
            ["--num_classes=4"],
        ),
        ("run_i2t.sh", "run_t2i.sh", "pretrain_main", RETRIEVAL_ENV, {"img2txt": "txt2img"}, []),
    ]
    for tested, sibling, app, env, renames, args in pairs:
        want = _recorded_command(tmp_path, tested, env, *args)
        assert want[:2] == ["-m", f"kaleido_tf.apps.{app}"], want
        for old, new in renames.items():
            assert any(old in arg for arg in want), (old, want)
            want = [arg.replace(old, new) for arg in want]
        assert _recorded_command(tmp_path, sibling, env, *args) == want, sibling
    assert "--task=subcatepred" in _recorded_command(tmp_path, "run_subcat.sh", FINETUNE_ENV)
    # each retrieval script lists its own files (retrieve_i2t_* / retrieve_t2i_*)
    for kind, prefix in (("img2txt", "retrieve_i2t_"), ("txt2img", "retrieve_t2i_")):
        listed = (tmp_path / "dataset" / f"eval_{kind}_list.list_csv").read_text().split()
        assert [os.path.basename(f) for f in listed] == [f"{prefix}_a"], (kind, listed)


def test_run_finetune(project, pretrained):
    task = "catepred"
    out = _script(
        project,
        "run_cat.sh",
        {
            "PRETRAIN_MODEL": str(project / "checkpoints" / "pretrained"),
            "INPUT_SCHEMA": schema_string("finetune"),
            **FINETUNE_ENV,
        },
        "--num_classes=4",
    )
    assert f"freshly initialised: kaleido_bert_{task}/{task}_dense/kernel" in out
    assert "macro avg" in out  # the per-class report
    results = json.loads((project / "checkpoints" / "classification" / task / "eval_results.json").read_text())
    assert set(results) >= {"accuracy", "macro_f1", "loss"} and 0 <= results["accuracy"] <= 1


def test_run_retrieval_finetuning(project, pretrained):
    out = _script(
        project,
        "run_retrieval.sh",
        {
            "PRETRAIN_MODEL": str(project / "checkpoints" / "pretrained"),
            "INPUT_SCHEMA": schema_string("finetune"),
            "TRAIN_BATCH_SIZE": "4",
            "NUM_EPOCHS": "1",
            "LEARNING_RATE": "1e-3",
        },
    )
    assert "freshly initialised: kaleido_bert_retrieval/itc_head/" in out
    results = json.loads((project / "checkpoints" / "retrieval" / "model" / "eval_results.json").read_text())
    assert np.isfinite(results["itc_loss"]) and np.isfinite(results["itm_loss"])
    assert 0 <= results["in_batch_t2i_recall@1"] <= 1


def test_run_retrieval(project, pretrained):
    kind = "img2txt"
    out = _script(
        project,
        "run_i2t.sh",
        {
            "PREDICT_CHECKPOINT": str(project / "checkpoints" / "pretrained"),
            "INPUT_SCHEMA": schema_string("retrieval"),
            **RETRIEVAL_ENV,
        },
    )
    for line in (
        "Accuracy:",
        "Rank@1:",
        "Rank@5, Rank@10, Rank@100: not shown (a query has only 5 candidates)",
        "AUC:",
    ):
        assert line in out
    out_dir = project / "checkpoints" / "retrieve" / kind
    metrics = json.loads((out_dir / f"eval_{kind}_metrics.json").read_text())
    assert metrics["pairs"] == 15 and metrics["queries"] == 3
    rescored = score_retrieval(read_retrieval_results(str(out_dir / f"eval_{kind}_results.txt")), type=kind)
    assert rescored["auc"] == pytest.approx(metrics["auc"]) and rescored["rank@1"] == pytest.approx(metrics["rank@1"])
