"""Atomic file and directory writes: a reader sees the old output or the complete new one, never a part.

Everything the project writes that a later step trusts (checkpoints, shards, exports, result files,
converted models) goes through these helpers: the content is written under a temporary name in the same
directory, flushed, and renamed over the final name in one step.

A directory is replaced by an atomic exchange of the new and the old directory where the system offers
one (Linux `renameat2(RENAME_EXCHANGE)`); elsewhere by renames that a process killed half-way leaves in a
state `recover_directory` (run at the start of every `atomic_directory`) completes: a finished new
directory is put in place, leftovers of dead writers are removed.
"""

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile


def _umask():
    """The process umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_path(path):
    """Flushes a file or directory to disk, ignoring what the filesystem does not support."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class KeepOrDiscard:
    """The `with` behaviour of a writer that can `close()` (keep what it wrote) or `abort()` (discard it): a
    block that ends normally closes the writer, one that raises aborts it, and the exception goes on."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


@contextlib.contextmanager
def atomic_write(path, mode="w", encoding=None):
    """Opens a temporary file beside `path`; on a clean exit renames it to `path`.

    On an exception the temporary file is removed and `path` is left as it was.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    os.chmod(tmp, 0o666 & ~_umask())  # the usual permissions of a new file, not mkstemp's private 0600
    if "b" in mode:
        f = os.fdopen(fd, mode)
    else:
        f = os.fdopen(fd, mode, encoding=encoding or "utf-8")
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_path(directory)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


# ---------------------------------------------------------------------------- directories
# Names beside PATH, written by process PID on the machine whose name hashes to HOST:
#   .BASENAME.PID@HOST-RANDOM.tmp  the directory being written
#   .BASENAME.PID@HOST-RANDOM.new  complete, about to replace PATH
#   .BASENAME.PID@HOST-RANDOM.old  the replaced PATH, being removed
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_renameat2 = None


def _exchange(a, b):
    """Swaps the paths `a` and `b` in one atomic step; False where the system cannot (then nothing moved)."""
    global _renameat2
    if not sys.platform.startswith("linux"):
        return False
    if _renameat2 is None:
        try:
            function = ctypes.CDLL(None, use_errno=True).renameat2
        except (OSError, AttributeError):  # a C library without renameat2 (glibc < 2.28, musl)
            _renameat2 = False
            return False
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        function.restype = ctypes.c_int
        _renameat2 = function
    if _renameat2 is False:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM):
        return False  # kernel or file system without RENAME_EXCHANGE
    raise OSError(code, os.strerror(code), a, None, b)


def _host_tag():
    """8 hex digits naming this machine (a shared file system may see writers of several machines)."""
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _alive(pid, host):
    """Whether the writer `pid` on `host` may still be running; another machine's, or unknown, counts as alive."""
    if host != _host_tag() or pid == os.getpid() or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _leftovers(path):
    """[(kind, full path, (writer pid, host), mtime)] of the temporary directories of `path` in its parent."""
    parent, base = os.path.split(path)
    pattern = re.compile(r"\." + re.escape(base) + r"\.(\d+)@([0-9a-f]{8})-[^.]+\.(tmp|new|old)\Z")
    found = []
    try:
        names = os.listdir(parent)
    except OSError:
        return found
    for name in names:
        match = pattern.match(name)
        if match:
            full = os.path.join(parent, name)
            try:
                mtime = os.stat(full).st_mtime
            except OSError:
                continue
            found.append((match.group(3), full, (int(match.group(1)), match.group(2)), mtime))
    return found


def recover_directory(path):
    """Completes or cleans up `atomic_directory` replacements of `path` that a killed process left.

    If `path` is missing and a complete new directory (`.new`) is waiting beside it, it is put in place
    (else a replaced one, `.old`, is put back). Temporary directories of writers of this machine that are
    no longer running are removed (those of running writers, or of other machines, are left alone).
    Returns a list of sentences saying what was done (empty when nothing was left over).
    """
    path = os.path.abspath(os.fspath(path))
    entries = _leftovers(path)
    actions = []
    if entries and not os.path.lexists(path):
        for kind in ("new", "old"):  # a finished new directory first, else the one it was replacing
            candidates = sorted((e for e in entries if e[0] == kind), key=lambda e: e[3], reverse=True)
            if candidates:
                chosen = candidates[0]
                try:
                    os.rename(chosen[1], path)
                except FileNotFoundError:  # its writer finished meanwhile
                    break
                entries.remove(chosen)
                actions.append(
                    f"restored {path} from {'the complete new' if kind == 'new' else 'the previous'} "
                    f"directory {os.path.basename(chosen[1])}"
                )
                fsync_path(os.path.dirname(path))
                break
    for _kind, full, (pid, host), _ in entries:
        if not _alive(pid, host):
            shutil.rmtree(full, ignore_errors=True)
            actions.append(f"removed the leftover {os.path.basename(full)} of a writer that stopped (pid {pid})")
    return actions


def _install(tmp, path):
    """Puts the complete directory `tmp` at `path`, replacing what is there."""
    parent = os.path.dirname(path)
    if not os.path.lexists(path):
        os.rename(tmp, path)
        fsync_path(parent)
    elif _exchange(tmp, path):  # one atomic step: `path` is new, `tmp` holds the old directory
        fsync_path(parent)
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        stem = tmp[: -len(".tmp")]
        new, old = stem + ".new", stem + ".old"
        os.rename(tmp, new)  # complete: recover_directory may now put it in place
        os.rename(path, old)  # `path` is missing from here ...
        os.rename(new, path)  # ... to here; a kill in between is completed by recover_directory
        fsync_path(parent)
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(path, overwrite=True):
    """Yields a temporary directory beside `path`; on a clean exit it replaces `path` whole.

    An existing `path` is kept until the new one is complete and then replaced in one atomic step (or,
    where the system has no atomic exchange, in renames that `recover_directory` completes if the process
    is killed between them). With `overwrite=False` an existing `path` is an error. On an exception the
    temporary directory is removed. Leftovers of killed writers are recovered or removed first.
    """
    path = os.path.abspath(os.fspath(path))
    parent, base = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    recover_directory(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists (pass overwrite=True to replace it)")
    tmp = tempfile.mkdtemp(prefix=f".{base}.{os.getpid()}@{_host_tag()}-", suffix=".tmp", dir=parent)
    os.chmod(tmp, 0o777 & ~_umask())  # the usual permissions of a new directory, not mkdtemp's private 0700
    try:
        yield tmp
        _install(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path, text):
    with atomic_write(path, "w") as f:
        f.write(text)


def read_json_file(path, what="file"):
    """The JSON value held in file `path`.

    Raises FileNotFoundError "<what> not found: <path>", or ValueError naming the file, line and column of
    broken JSON.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
