"""`kaleido-eval-retrieval`: JSON and text output, exit status 2 with a message on bad input."""

import json
import os
import subprocess
import sys

import pytest

from kaleido_tf.evaluators import retrieval_cli
from kaleido_tf.evaluators.retrieval import METRIC_KEYS

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EPS = 1e-5
SEP = "\001"

# Two image queries (img2txt): i1 has its positive second (match logits 0.9 neg, 0.4 pos), i2 has it
# first (0.7 pos, 0.2 neg, 0.1 neg). Keyed by text instead (txt2img) every pair is its own query.
LINES = [
    SEP.join(["['t1', 't2']", "['i1', 'i1']", "['p1', 'p1']", "[[0], [1]]", "[0.0, 0.9, 0.0, 0.4]"]),
    SEP.join(
        [
            "[b't3', b't4', b't5']",
            "[b'i2', b'i2', b'i2']",
            "[b'p2', b'p2', b'p2']",
            "[1, 0, 0]",
            "[0.0, 0.7, 0.5, 0.2, 0.5, 0.1]",
        ]
    ),
]


@pytest.fixture
def results_file(tmp_path):
    path = tmp_path / "eval_img2txt_results.txt"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    return path


def test_json_output(results_file, capsys):
    status = retrieval_cli.main(["--results", str(results_file), "--type", "img2txt", "--json", "--no-progress"])
    out, err = capsys.readouterr()
    assert status == 0, err
    metrics = json.loads(out)
    assert list(metrics) == list(METRIC_KEYS)
    assert metrics["queries"] == 2 and metrics["pairs"] == 5
    # argmax is wrong only for t1 (predicts 1, label 0) -> 4 of 5 right.
    assert metrics["accuracy"] == pytest.approx(4 / (5 + EPS))
    assert metrics["rank@1"] == pytest.approx(1 / (2 + EPS))
    assert metrics["rank@5"] == pytest.approx(2 / (2 + EPS))
    assert metrics["rank@100"] == pytest.approx(2 / (2 + EPS))
    # positives 0.4, 0.7 vs negatives 0.9, 0.2, 0.1: 0.4 beats 2, 0.7 beats 2 -> 4 / 6
    assert metrics["auc"] == pytest.approx(4 / 6)


def test_text_output_and_the_wrong_type(results_file, capsys):
    assert retrieval_cli.main(["--results", str(results_file), "--type", "img2txt"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Queries: 2  Pairs: 5  Candidates per query: 2 to 3"
    assert [line.split(":")[0] for line in out[1:]] == ["Accuracy", "Rank@1", "Rank@5, Rank@10, Rank@100", "AUC"]
    # keyed by text, the img2txt pairs would be 5 queries of one candidate, 3 without a positive: refused
    assert retrieval_cli.main(["--results", str(results_file), "--type", "txt2img"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err
    assert err.startswith("kaleido-eval-retrieval: error: these are img2txt results")
    assert "not txt2img" in err and "3 of 5 queries" in err and "--type img2txt" in err


def test_undefined_auc_is_json_null(tmp_path, capsys):
    path = tmp_path / "r.txt"
    path.write_text(SEP.join(["['t']", "['i']", "['p']", "[1]", "[0.0, 1.0]"]) + "\n")
    assert retrieval_cli.main(["--results", str(path), "--type", "txt2img", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["auc"] is None


@pytest.mark.parametrize(
    "argv_tail, message",
    [
        (["--type", "sideways"], "invalid choice: 'sideways'"),
        (["--type", "txt2img", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_flags_exit_2(results_file, capsys, argv_tail, message):
    assert retrieval_cli.main(["--results", str(results_file)] + argv_tail) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_file_exits_2(tmp_path, capsys):
    missing = tmp_path / "nope.txt"
    assert retrieval_cli.main(["--results", str(missing), "--type", "txt2img"]) == 2
    err = capsys.readouterr().err
    assert f"cannot read {missing}" in err and "No such file" in err


def test_malformed_file_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.txt"
    path.write_text(LINES[0] + "\n" + "['t1']" + SEP + "['i1']\n")
    assert retrieval_cli.main(["--results", str(path), "--type", "txt2img"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2: expected 5 fields" in err


def test_run_reads_sys_argv(results_file, monkeypatch, capsys):
    monkeypatch.setattr(
        sys, "argv", ["kaleido-eval-retrieval", "--results", str(results_file), "--type", "img2txt", "--json"]
    )
    with pytest.raises(SystemExit) as info:
        retrieval_cli.run()
    assert info.value.code == 0
    assert json.loads(capsys.readouterr().out)["pairs"] == 5


def test_console_entry_in_a_subprocess(results_file, tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    code = "from kaleido_tf.evaluators.retrieval_cli import run; run()"
    ok = subprocess.run(
        [sys.executable, "-c", code, "--results", str(results_file), "--type", "img2txt", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["queries"] == 2
    bad = subprocess.run(
        [sys.executable, "-c", code, "--results", str(tmp_path / "missing.txt"), "--type", "img2txt"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert bad.returncode == 2
    assert "kaleido-eval-retrieval: error: cannot read" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_protocol_sample100_is_the_default_and_full_points_to_kaleido_index(results_file, capsys):
    args = ["--results", str(results_file), "--type", "img2txt", "--json", "--no-progress"]
    assert retrieval_cli.main(args) == 0
    default = capsys.readouterr().out
    assert retrieval_cli.main(args + ["--protocol", "sample100"]) == 0
    assert capsys.readouterr().out == default
    assert retrieval_cli.main(args + ["--protocol", "full"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and "kaleido-index evaluate" in err
