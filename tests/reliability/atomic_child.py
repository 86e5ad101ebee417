"""Writes a directory with `atomic_directory` and SIGKILLs itself at a chosen point (the kill tests' victim).

    python -m tests.reliability.atomic_child PATH CONTENT KILL_AT [--no_exchange]

The new directory holds files f0..f4 (and sub/f5) whose text is CONTENT. KILL_AT is one of
`writing` (half the files written), `after_exchange` (the atomic swap is done, the old directory not yet
removed), `after_tmp_to_new`, `after_path_to_old`, `after_new_to_path` (the three renames used where the
system has no atomic exchange; `--no_exchange` forces them) or `never`.
"""

import os
import signal
import sys

from kaleido_tf.utils import io

KILL_POINTS = ("writing", "after_exchange", "after_tmp_to_new", "after_path_to_old", "after_new_to_path", "never")


def write_content(directory, content, stop_after=None):
    os.makedirs(os.path.join(directory, "sub"), exist_ok=True)
    names = [f"f{i}" for i in range(5)] + [os.path.join("sub", "f5")]
    for count, name in enumerate(names):
        if stop_after is not None and count == stop_after:
            return
        with open(os.path.join(directory, name), "w") as f:
            f.write(content)


def _die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def main(argv):
    path, content, kill_at = argv[:3]
    if kill_at not in KILL_POINTS:
        raise SystemExit(f"unknown kill point {kill_at!r}; expected one of {KILL_POINTS}")
    if "--no_exchange" in argv:
        io._exchange = lambda a, b: False
    else:
        real_exchange = io._exchange

        def exchange(a, b):
            done = real_exchange(a, b)
            if not done:
                raise SystemExit("this file system has no atomic exchange; run with --no_exchange")
            if kill_at == "after_exchange":
                _die()
            return done

        io._exchange = exchange
    real_rename = os.rename

    def rename(src, dst):
        real_rename(src, dst)
        if (
            (kill_at == "after_tmp_to_new" and dst.endswith(".new"))
            or (kill_at == "after_path_to_old" and dst.endswith(".old"))
            or (kill_at == "after_new_to_path" and src.endswith(".new"))
        ):
            _die()

    os.rename = rename
    with io.atomic_directory(path) as tmp:
        if kill_at == "writing":
            write_content(tmp, content, stop_after=3)
            _die()
        write_content(tmp, content)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
