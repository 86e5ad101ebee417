"""Costly test inputs made once per test session, even when pytest-xdist spreads their users over workers."""

import fcntl
import os
import shutil


def once_per_session(tmp_path_factory, name, produce):
    """The directory `name` that `produce(directory)` filled, made once in this test session.

    Under pytest-xdist each worker has its own temporary directory below the session's: the directory then
    lives in the session's, and a file lock there lets the first worker make it while the others wait. A
    `produce` that failed leaves no directory behind: the next user tries again (and reports the failure too).
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by this session's workers (and by no other session)
    directory = base / name
    done = base / f"{name}.done"
    with open(base / f"{name}.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            try:
                produce(directory)
            except BaseException:
                shutil.rmtree(directory, ignore_errors=True)
                raise
            done.write_text("")
    return directory
