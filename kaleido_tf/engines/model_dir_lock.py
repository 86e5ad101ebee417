"""One training per model directory: an exclusive lock on `MODEL_DIR/train.lock` (`kaleido_tf.utils.file_lock`).

The kernel drops the lock when its process ends, however it ends (`kill -9` included), and a second writer is
refused with a sentence naming the holder's process. Within one process the lock is re-entrant: a second
trainer on the same directory (a test, a notebook) shares the lock the first took.
"""

import os

from kaleido_tf.utils import file_lock

LOCK_NAME = "train.lock"


class ModelDirBusyError(file_lock.LockBusyError):
    """Another live process trains into the same model directory."""


def _lock_path(model_dir):
    return os.path.join(model_dir, LOCK_NAME)


def read_holder(model_dir):
    """The holder's record written into the lock file ({} when none can be read)."""
    return file_lock.read_holder(_lock_path(model_dir))


def acquire(model_dir):
    """Takes the lock of `model_dir` (created if needed) for this process; raises ModelDirBusyError naming
    the holder when another process has it. Returns the lock file's path."""
    try:
        return file_lock.acquire(_lock_path(model_dir))
    except file_lock.LockBusyError as e:
        raise ModelDirBusyError(
            f"--model_dir {model_dir} is in use by {file_lock.describe_holder(e.holder)} (lock {e.path}); wait "
            f"for it to finish, stop it, or train into another --model_dir",
            e.path,
            e.holder,
        ) from None


def release(model_dir):
    """Gives back one use of this process's lock on `model_dir`; the last one unlocks it."""
    file_lock.release(_lock_path(model_dir))
