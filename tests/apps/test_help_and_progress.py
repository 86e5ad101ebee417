"""`--help` of every tool lists that tool's own flags, and every tool spells the progress switch the same way:
`--progress` / `--noprogress` (the old spellings still work, unlisted)."""

import os
import subprocess
import sys

import pytest

from kaleido_tf.datasets import csv2tfrecord
from kaleido_tf.evaluators import retrieval_cli
from kaleido_tf.preprocessors import cli as preprocess_cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _help(module):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    return done.stdout + done.stderr


@pytest.mark.parametrize(
    "module, own_flags",
    [
        ("kaleido_tf.apps.pretrain_main", ["--train_input_fp", "--model_config", "--[no]progress", "--mode"]),
        ("kaleido_tf.apps.finetune_main", ["--task", "--label_map", "--num_classes", "--[no]progress"]),
        ("kaleido_tf.apps.convert_main", ["--tf1_checkpoint", "--output_dir", "--config"]),
    ],
)
def test_help_of_the_absl_apps_lists_their_own_flags(module, own_flags):
    text = _help(module)
    for flag in own_flags:
        assert f"\n  {flag}:" in text, (flag, text[-2000:])
    assert "--helpfull" not in text.split("flags:", 1)[0]  # the flags, not only a pointer to --helpfull


@pytest.mark.parametrize(
    "parser, base",
    [
        (preprocess_cli.build_parser(), ["--catalog", "c.jsonl", "--output_dir", "out"]),
        (csv2tfrecord._parser(), ["--input_fp", "l.txt", "--input_schema", "pretrain", "--output_dir", "out"]),
        (retrieval_cli.build_parser(), ["--results", "r.txt", "--type", "img2txt"]),
    ],
    ids=["kaleido-preprocess", "kaleido-csv2tfrecord", "kaleido-eval-retrieval"],
)
def test_argparse_tools_spell_the_progress_switch_like_the_absl_apps(parser, base):
    assert parser.parse_args([*base, "--noprogress"]).progress is False
    assert parser.parse_args([*base, "--progress"]).progress is True
    for old in ("--no_progress", "--no-progress"):
        assert parser.parse_args([*base, old]).progress is False
    text = parser.format_help()
    assert "--progress" in text and "--noprogress" in text
    assert "--no_progress" not in text and "--no-progress" not in text and "--quiet" not in text
