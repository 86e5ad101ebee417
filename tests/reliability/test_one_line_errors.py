"""Every command-line tool turns an OSError, ValueError or TensorFlow error into one line naming the cause (the
file and the flag that gave it, the field, the step) and what to do, exit 2, no traceback; `--traceback` or
KALEIDO_TF_TRACEBACK=1 shows the trace."""

import errno
import os

import pytest
import tensorflow as tf

from kaleido_tf.utils import cli_errors
from tests.apps.tiny_data import write_tiny_bundle
from tests.conftest import GOLDEN
from tests.preprocessors.factory import make_catalog, small_args
from tests.reliability.helpers import run

TINY = os.path.join(GOLDEN, "tiny", "model.ckpt-0")


# --------------------------------------------------------------------------------------- the wrapper
@pytest.mark.parametrize(
    "error, argv, line",
    [
        (
            PermissionError(errno.EACCES, "Permission denied", "/data/out/summary.json"),
            ["tool", "--output_dir=/data/out"],
            "/data/out/summary.json (given by --output_dir): permission denied; check its permissions or choose "
            "another path",
        ),
        (
            OSError(errno.EROFS, "Read-only file system", "/ro/model/train.lock"),
            ["tool", "--model_dir", "/ro/model", "--model", "/ro"],
            "/ro/model/train.lock (given by --model_dir): read-only file system; it is on a read-only file system: "
            "choose another path",
        ),
        (
            OSError(errno.ENOSPC, "No space left on device", "/big/shard-1"),
            ["tool"],
            "/big/shard-1: no space left on device; the disk is full: free space there or choose another path",
        ),
        (KeyError("masked_lm_weights"), ["tool"], "masked_lm_weights"),
        (ValueError("field x: bad\n  second line"), ["tool"], "field x: bad second line"),
        (
            tf.errors.InvalidArgumentError(
                None,
                None,
                "Graph execution error:\n\nDetected at node IteratorGetNext defined at (most recent call last):\n"
                '  File "/x/trainer.py", line 3, in train\n\nlist.txt:4: field weights: value 2 of 3 is NaN\n'
                "\t [[{{node IteratorGetNext}}]] [Op:__inference_train_fn_123]",
            ),
            ["tool"],
            "list.txt:4: field weights: value 2 of 3 is NaN",
        ),
    ],
)
def test_each_error_becomes_one_line_naming_file_flag_and_remedy(error, argv, line):
    assert cli_errors.describe(error, argv) == line


def test_guard_exits_2_with_one_line_and_traceback_on_request(capsys, monkeypatch):
    def main(argv):
        raise ValueError("--thing: wrong")

    monkeypatch.delenv(cli_errors.TRACEBACK_ENV, raising=False)
    monkeypatch.setattr(cli_errors, "_wanted", [False])
    assert cli_errors.guard("kaleido-x", main)(["a"]) == 2
    assert capsys.readouterr().err == "kaleido-x: error: --thing: wrong\n"
    argv = ["a", "--traceback"]
    assert cli_errors.guard("kaleido-x", main)(argv) == 2 and argv == ["a"]
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and err.endswith("kaleido-x: error: --thing: wrong\n")
    monkeypatch.setattr(cli_errors, "_wanted", [False])
    monkeypatch.setenv(cli_errors.TRACEBACK_ENV, "1")
    assert cli_errors.guard("", main)(["a"]) == 2
    assert "Traceback" in capsys.readouterr().err

    def buggy(argv):
        raise ZeroDivisionError  # a bug, not a bad input: keeps its traceback

    with pytest.raises(ZeroDivisionError):
        cli_errors.guard("kaleido-x", buggy)(["a"])


# --------------------------------------------------------------------------------------- each tool
def _one_line(err, start):
    lines = [x for x in err.splitlines() if "error:" in x]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith(start), err
    return lines[0]


def test_argparse_tools_one_line_for_unwritable_or_unreadable_paths(tmp_path, capsys):
    from kaleido_tf.evaluators.retrieval_cli import main as eval_main
    from kaleido_tf.export.cli import main as export_main
    from kaleido_tf.preprocessors.cli import main as preprocess_main

    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    catalog, _ = make_catalog(str(tmp_path / "catalog"), num_products=3)

    assert preprocess_main(small_args(catalog, str(blocker / "out"))) == 2
    line = _one_line(capsys.readouterr().err, "kaleido-preprocess: error: ")
    assert f"{blocker}" in line and "(given by --output_dir)" in line and "not a directory" in line

    assert export_main(["--model", TINY, "--export_dir", str(blocker / "serving")]) == 2
    line = _one_line(capsys.readouterr().err, "kaleido-export: error: ")
    assert f"{blocker}" in line and "(given by --export_dir)" in line

    assert eval_main(["--results", str(tmp_path), "--type", "img2txt"]) == 2
    _one_line(capsys.readouterr().err, "kaleido-eval-retrieval: error: ")


@pytest.fixture(scope="module")
def pretrain_bundle(tmp_path_factory):
    directory = tmp_path_factory.mktemp("one_line")
    list_file, schema, _ = write_tiny_bundle(directory / "data", "pretrain", num_examples=8, num_files=1)
    blocker = directory / "a_file"
    blocker.write_text("not a directory")
    return directory, list_file, schema, blocker


def _train(list_file, schema, model_dir, *extra, module="pretrain_main"):
    return [
        "-m",
        f"kaleido_tf.apps.{module}",
        "--mode=train",
        f"--train_input_fp={list_file}",
        f"--input_schema={schema}",
        f"--pretrain_model_name_or_path={TINY}",
        "--input_sequence_length=16",
        "--train_batch_size=4",
        "--train_steps=2",
        "--progress=false",
        f"--model_dir={model_dir}",
        *extra,
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--train_batch_size=-4"], "error: --train_batch_size=-4 is out of range: give at least 1 example per batch"),
        (["--train_batch_size=0"], "error: --train_batch_size=0 is out of range"),
        (["--train_steps=-5"], "error: --train_steps=-5 is out of range"),
        (["--warmup_ratio=-1"], "error: --warmup_ratio=-1.0 is out of range"),
        (["--learning_rate=-0.01"], "error: --learning_rate=-0.01 is out of range: give a positive learning rate"),
        (["--num_epochs=0"], "error: --num_epochs=0 is out of range"),
    ],
)
def test_training_app_refuses_out_of_range_flags_before_any_work(pretrain_bundle, extra, expected):
    directory, list_file, schema, _ = pretrain_bundle
    model_dir = directory / f"model{extra[0].split('=')[0]}"
    code, out = run(_train(list_file, schema, model_dir, *extra))
    assert code == 2, out[-3000:]
    _one_line(out, expected)
    assert not model_dir.exists()  # nothing was started


@pytest.mark.slow
def test_training_app_one_line_for_an_unwritable_model_dir_and_traceback_on_request(pretrain_bundle):
    directory, list_file, schema, blocker = pretrain_bundle
    code, out = run(_train(list_file, schema, blocker / "model"))
    assert code == 2, out[-3000:]
    line = _one_line(out, "error: ")
    assert f"{blocker}/model (given by --model_dir): not a directory" in line, line
    code, out = run(_train(list_file, schema, blocker / "model", "--traceback"))
    assert code == 2 and "Traceback (most recent call last)" in out and "error: " in out, out[-3000:]


@pytest.mark.slow
def test_convert_tool_one_line_for_an_unwritable_output(pretrain_bundle):
    _, _, _, blocker = pretrain_bundle
    code, out = run(["-m", "kaleido_tf.apps.convert_main", f"--tf1_checkpoint={TINY}", f"--output_dir={blocker}/out"])
    assert code == 2, out[-3000:]
    line = _one_line(out, "kaleido-convert: error: ")
    assert str(blocker) in line, line
