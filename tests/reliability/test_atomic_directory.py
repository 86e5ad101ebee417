"""`atomic_directory` killed at every step: the path holds the old directory or the complete new one, and
the next write (or `recover_directory`) finishes or removes whatever a killed writer left."""

import os
import signal
import subprocess
import sys

import pytest

from kaleido_tf.utils.io import atomic_directory, recover_directory
from tests.reliability.atomic_child import write_content

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _state(path):
    """'old', 'new' or 'missing'; fails on anything partial or mixed."""
    if not os.path.lexists(path):
        return "missing"
    files = sorted(os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs)
    assert files == ["f0", "f1", "f2", "f3", "f4", os.path.join("sub", "f5")], f"partial directory: {files}"
    contents = {open(os.path.join(path, f)).read() for f in files}
    assert len(contents) == 1 and contents <= {"old", "new"}, f"mixed directory: {contents}"
    return contents.pop()


def _leftovers(parent):
    return sorted(name for name in os.listdir(parent) if name.startswith("."))


def _kill_child(path, kill_at, no_exchange):
    argv = [sys.executable, "-m", "tests.reliability.atomic_child", str(path), "new", kill_at]
    if no_exchange:
        argv.append("--no_exchange")
    done = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": ROOT}
    )
    if done.returncode == 1 and "no atomic exchange" in done.stderr:
        pytest.skip("this file system has no atomic exchange (the rename fallback is tested separately)")
    return done


CASES = [
    # kill point, uses the fallback renames, state right after the kill
    ("writing", False, "old"),
    ("after_exchange", False, "new"),
    ("writing", True, "old"),
    ("after_tmp_to_new", True, "old"),
    ("after_path_to_old", True, "missing"),  # the one moment without PATH: recovery puts the new one there
    ("after_new_to_path", True, "new"),
]


@pytest.mark.parametrize("kill_at, no_exchange, right_after", CASES)
def test_killed_replacement_leaves_old_or_new_and_recovers(tmp_path, kill_at, no_exchange, right_after):
    path = tmp_path / "converted"
    with atomic_directory(path) as tmp:
        write_content(tmp, "old")
    assert _state(path) == "old" and _leftovers(tmp_path) == []

    done = _kill_child(path, kill_at, no_exchange)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert _state(path) == right_after
    assert _leftovers(tmp_path), "a killed writer leaves its temporary directory"

    actions = recover_directory(path)
    assert actions, "recovery reports what it did"
    expected = "new" if right_after == "missing" else right_after
    assert _state(path) == expected
    assert _leftovers(tmp_path) == [], f"leftovers not cleaned: {_leftovers(tmp_path)}"
    assert recover_directory(path) == []

    # the next write succeeds and replaces whichever is there
    with atomic_directory(path) as tmp:
        write_content(tmp, "old" if expected == "new" else "new")
    assert _state(path) == ("old" if expected == "new" else "new") and _leftovers(tmp_path) == []


def test_the_next_write_recovers_by_itself(tmp_path):
    path = tmp_path / "export"
    with atomic_directory(path) as tmp:
        write_content(tmp, "old")
    done = _kill_child(path, "after_path_to_old", True)
    assert done.returncode == -signal.SIGKILL and _state(path) == "missing"
    with pytest.raises(FileExistsError, match="already exists"):  # recovered first: the new one is there
        with atomic_directory(path, overwrite=False):
            pass
    assert _state(path) == "new" and _leftovers(tmp_path) == []


def test_first_write_killed_leaves_nothing_trusted(tmp_path):
    path = tmp_path / "fresh"
    done = _kill_child(path, "writing", False)
    assert done.returncode == -signal.SIGKILL
    assert _state(path) == "missing" and len(_leftovers(tmp_path)) == 1
    assert recover_directory(path) and _leftovers(tmp_path) == [] and _state(path) == "missing"


def test_live_writers_temporaries_are_left_alone(tmp_path):
    from kaleido_tf.utils.io import _host_tag

    path = tmp_path / "shared"
    with atomic_directory(path) as tmp:
        write_content(tmp, "old")
        assert recover_directory(path) == []  # our own temporary: a writer still running
        assert os.path.isdir(tmp)
    assert _state(path) == "old" and _leftovers(tmp_path) == []

    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = int(finished.stdout)  # a process of this machine that has ended
    other_host = "0" * 8 if _host_tag() != "0" * 8 else "1" * 8
    mine = tmp_path / f".shared.{dead_pid}@{_host_tag()}-abc.tmp"
    elsewhere = tmp_path / f".shared.{dead_pid}@{other_host}-abc.tmp"  # a writer on another machine
    mine.mkdir()
    elsewhere.mkdir()
    assert len(recover_directory(path)) == 1
    assert _leftovers(tmp_path) == [elsewhere.name]


def test_outputs_get_the_usual_permissions(tmp_path):
    """Shared clusters: a converted model or an export must be readable by others as the umask allows, not
    private like a temporary file (mkstemp 0600, mkdtemp 0700)."""
    from kaleido_tf.utils.io import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "config.json", "{}")
        with atomic_directory(tmp_path / "export") as tmp:
            write_content(tmp, "new")
        os.umask(0o077)
        atomic_write_text(tmp_path / "private.json", "{}")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "config.json").st_mode & 0o777 == 0o644
    assert os.stat(tmp_path / "export").st_mode & 0o777 == 0o755
    assert os.stat(tmp_path / "private.json").st_mode & 0o777 == 0o600
