"""Runs a command-line entry point with some functions slowed down, so a kill test can land inside them.

    python -m tests.reliability.slow_child [--slow MODULE:QUALNAME=SECONDS ...] -- MODULE [ARGS ...]

Each `--slow` target sleeps SECONDS before every call. MODULE's `run()` is then called with `sys.argv` set
to ARGS, as its console script would be; the process exits with what it returns.
"""

import functools
import importlib
import sys
import time


def slow_down(target, seconds):
    """Makes MODULE:QUALNAME (a function or a method) sleep `seconds` before every call."""
    module_name, qualname = target.split(":")
    owner = importlib.import_module(module_name)
    *path, name = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)

    @functools.wraps(original)
    def slowed(*args, **kwargs):
        time.sleep(seconds)
        return original(*args, **kwargs)

    setattr(owner, name, slowed)


def main(argv):
    split = argv.index("--")
    options, (module_name, *args) = argv[:split], argv[split + 1 :]
    if len(options) % 2 or any(flag != "--slow" for flag in options[::2]):
        raise SystemExit(f"expected --slow MODULE:QUALNAME=SECONDS pairs before '--', got {options}")
    for spec in options[1::2]:
        target, seconds = spec.rsplit("=", 1)
        slow_down(target, float(seconds))
    module = importlib.import_module(module_name)
    sys.argv = [module_name, *args]
    return module.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
