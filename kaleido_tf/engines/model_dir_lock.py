"""One training per model directory: an exclusive lock on `MODEL_DIR/train.lock`.

The lock is an `fcntl.flock` on the open file, so the kernel drops it when its process ends, however it ends
(`kill -9` included): nothing is left to clean up and the next run takes it at once. The holder writes its PID,
host, command and start time into the file, so a second writer is refused with a sentence naming it.

Within one process the lock is re-entrant: a second trainer on the same directory (a test, a notebook) shares
the lock the first took.
"""

import fcntl
import json
import os
import socket
import sys
import time

LOCK_NAME = "train.lock"

_held = {}  # real path of the lock file -> [open file, users]


class ModelDirBusyError(RuntimeError):
    """Another live process trains into the same model directory."""


def _describe(holder):
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


def read_holder(model_dir):
    """The holder's record written into the lock file ({} when none can be read)."""
    try:
        with open(os.path.join(model_dir, LOCK_NAME), encoding="utf-8") as f:
            return json.loads(f.read() or "{}")
    except (OSError, ValueError):
        return {}


def acquire(model_dir):
    """Takes the lock of `model_dir` (created if needed) for this process; raises ModelDirBusyError naming
    the holder when another process has it. Returns the lock file's path."""
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.realpath(os.path.join(model_dir, LOCK_NAME))
    if path in _held:
        _held[path][1] += 1
        return path
    handle = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        holder = {}
        for _ in range(20):  # the holder writes its record just after taking the lock
            holder = read_holder(model_dir)
            if holder:
                break
            time.sleep(0.05)
        raise ModelDirBusyError(
            f"--model_dir {model_dir} is in use by {_describe(holder)} (lock {path}); wait for it to finish, "
            f"stop it, or train into another --model_dir"
        ) from None
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
    _held[path] = [handle, 1]
    return path


def release(model_dir):
    """Gives back one use of this process's lock on `model_dir`; the last one unlocks it."""
    path = os.path.realpath(os.path.join(model_dir, LOCK_NAME))
    entry = _held.get(path)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] <= 0:
        del _held[path]
        fcntl.flock(entry[0].fileno(), fcntl.LOCK_UN)
        entry[0].close()
