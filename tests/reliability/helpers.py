"""Shared by the reliability tests: child processes, kills at random moments, content fingerprints."""

import hashlib
import os
import random
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def child_env(**extra):
    env = {
        **os.environ,
        "PYTHONPATH": ROOT,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "KERAS_BACKEND": "tensorflow",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def start(argv, cwd=None, **env):
    """Starts `python argv...` with the repository importable; output goes to a pipe."""
    return subprocess.Popen(
        [sys.executable, *argv],
        cwd=cwd or ROOT,
        env=child_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process, timeout=300):
    """Waits for `process`; returns (return code, output)."""
    out, _ = process.communicate(timeout=timeout)
    return process.returncode, out


def run(argv, cwd=None, timeout=300, **env):
    return finish(start(argv, cwd, **env), timeout)


def new_rng():
    """A random generator with a fresh seed, and the seed (tests print it so a failure can be replayed)."""
    seed = int(os.environ.get("KALEIDO_KILL_SEED") or random.SystemRandom().randrange(2**31))
    return random.Random(seed), seed


def kill_at_random(argv, ready, max_delay, rng, cwd=None, timeout=300, poll=0.02, **env):
    """Starts the command, waits until `ready()` is true, sleeps a random time in [0, max_delay], SIGKILLs it.

    Returns (return code, output, seconds from ready to kill). The return code is -SIGKILL when the kill
    landed; a process that ended first returns its own code.
    """
    process = start(argv, cwd, **env)
    deadline = time.time() + timeout
    try:
        while not ready():
            if process.poll() is not None:
                return process.returncode, process.communicate()[0], 0.0
            if time.time() > deadline:
                raise TimeoutError(f"{argv} never became ready")
            time.sleep(poll)
        delay = rng.uniform(0.0, max_delay)
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        out, _ = process.communicate(timeout=60)
        return process.returncode, out, delay
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_fingerprint(path):
    """{relative path: sha256} of every file under `path` (None when `path` does not exist)."""
    if not os.path.exists(path):
        return None
    return {
        os.path.relpath(os.path.join(d, f), path): file_digest(os.path.join(d, f))
        for d, _, files in os.walk(path)
        for f in files
    }


def hidden_entries(directory):
    return sorted(name for name in os.listdir(directory) if name.startswith("."))
