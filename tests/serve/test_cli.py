"""kaleido-serve's command line: a failure to start is one line naming the cause, exit status 2, and
`--traceback` shows the traceback (utils/cli_errors.py, as for every tool)."""

import pytest

from kaleido_tf.apps.serve import cli
from kaleido_tf.utils import cli_errors


@pytest.fixture(autouse=True)
def _no_traceback(monkeypatch):
    monkeypatch.delenv(cli_errors.TRACEBACK_ENV, raising=False)
    monkeypatch.setattr(cli_errors, "_wanted", [False])


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--port", "0"], "--port=0: give a port from 1 to 65535"),
        (["--max_upload_mb", "-1"], "--max_upload_mb and --max_megapixels must be positive"),
        ([], "no such directory"),
    ],
)
def test_a_failure_to_start_is_one_line_and_exit_2(tmp_path, capsys, argv, words):
    missing = str(tmp_path / "no_export")
    assert cli.main(["--export_dir", missing, *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kaleido-serve: error: ") and words in err
    assert "Traceback" not in err


def test_an_export_dir_without_exports_names_the_layout(tmp_path, capsys):
    assert cli.main(["--export_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no SavedModel found (expected E/<version>/ or E/<name>/<version>/)" in err


def test_traceback_flag_shows_the_traceback(tmp_path, capsys):
    assert cli.main(["--export_dir", str(tmp_path / "none"), "--traceback"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert err.rstrip().splitlines()[-1].startswith("kaleido-serve: error: ")
