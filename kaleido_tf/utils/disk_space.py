"""A write that failed because its file system filled up (or a quota was hit): telling it from other
failures, and saying in one line what filled up, how much is free and what was kept."""

import errno
import os
import shutil

FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_FULL_TEXTS = ("No space left on device", "Disk quota exceeded", "File too large")


class DiskFullError(ValueError):
    """A write failed on a full file system; the message names the place, the free space and what was kept."""


def is_disk_full(error):
    """True when `error` (an OSError, a TensorFlow error, or one raised from either) says the disk is full."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in FULL_ERRNOS:
            return True
        if any(text in str(error) for text in _FULL_TEXTS):
            return True
        error = error.__cause__ or error.__context__
    return False


def free_mib(path):
    """MiB free on the file system of `path` (or of its nearest existing parent); NaN when unknown."""
    path = os.fspath(path)
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    try:
        return shutil.disk_usage(path or ".").free / 2**20
    except OSError:
        return float("nan")


def first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def disk_full_error(where, error, kept, remedy, writing=None):
    """The DiskFullError for `error` at `where`: `PLACE: the disk is full [while writing WHAT] (CAUSE; N MiB
    free on its file system); KEPT; REMEDY`."""
    what = f" while writing {writing}" if writing else ""
    return DiskFullError(
        f"{where}: the disk is full{what} ({first_line(error)}; {free_mib(where):.1f} MiB free on its file "
        f"system); {kept}; {remedy}"
    )
