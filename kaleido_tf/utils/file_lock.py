"""An exclusive lock on a file, for places where two writers could meet (a model directory, an index build).

The lock is an `fcntl.flock` on the open file, so the kernel drops it when its process ends, however it ends
(`kill -9` included): nothing is left to clean up and the next writer takes it at once. The holder writes its
PID, host, command and start time into the file, so a second writer is refused with a sentence naming it.

Within one process the lock is re-entrant: a second user of the same file (a test, a notebook) shares the lock
the first took, and the last `release` unlocks it.
"""

import contextlib
import fcntl
import json
import os
import socket
import sys
import time

_held = {}  # real path of the lock file -> [open file, users]


class LockBusyError(RuntimeError):
    """Another live process holds the lock; `holder` is its record ({} when it has not written one yet)."""

    def __init__(self, message, path, holder):
        super().__init__(message)
        self.path = path
        self.holder = holder


def describe_holder(holder):
    """`process 123 on host running `cmd` since 2026-...`: the holder's record in words."""
    if not holder:
        return "another process (it has not written its PID yet)"
    parts = [f"process {holder.get('pid', '?')}"]
    if holder.get("host"):
        parts.append(f"on {holder['host']}")
    if holder.get("command"):
        parts.append(f"running `{holder['command']}`")
    if holder.get("started"):
        parts.append(f"since {holder['started']}")
    return " ".join(parts)


def read_holder(path):
    """The holder's record written into the lock file `path` ({} when none can be read)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.loads(f.read() or "{}")
    except (OSError, ValueError):
        return {}


def acquire(path):
    """Takes the lock on the file `path` (created, with its directory, if needed) for this process; raises
    LockBusyError naming the holder when another process has it. Returns the lock file's real path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    real = os.path.realpath(path)
    if real in _held:
        _held[real][1] += 1
        return real
    handle = open(real, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        holder = {}
        for _ in range(20):  # the holder writes its record just after taking the lock
            holder = read_holder(real)
            if holder:
                break
            time.sleep(0.05)
        raise LockBusyError(f"{real} is held by {describe_holder(holder)}", real, holder) from None
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join(sys.argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(record) + "\n")
    handle.flush()
    _held[real] = [handle, 1]
    return real


def release(path):
    """Gives back one use of this process's lock on `path`; the last one unlocks it."""
    real = os.path.realpath(path)
    entry = _held.get(real)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] <= 0:
        del _held[real]
        fcntl.flock(entry[0].fileno(), fcntl.LOCK_UN)
        entry[0].close()


@contextlib.contextmanager
def locked(path):
    """`with locked(path):` holds the lock on `path` for the block (LockBusyError when another process has it)."""
    real = acquire(path)
    try:
        yield real
    finally:
        release(real)
