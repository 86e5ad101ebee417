"""One line, exit 2: how every command-line tool reports a failure it did not cause itself.

`guard(prog, main)` wraps a tool's `main`: an OSError, ValueError, LookupError, RuntimeError or TensorFlow
error becomes one line on stderr, `PROG: error: WHAT (WHERE); WHAT TO DO`, and the exit status 2. A file an
OSError names is matched to the command-line flag whose value holds it (`--output_dir`). TensorFlow's
multi-line errors keep their useful lines (what failed, in which file) and lose the rest ("Graph execution
error:", node names, Python stack frames).

`--traceback` on any tool's command line (or KALEIDO_TF_TRACEBACK=1 in the environment) prints the full
traceback before the line. Other exceptions are bugs: they keep their traceback.
"""

import errno
import functools
import os
import re
import sys
import traceback

TRACEBACK_FLAG = "--traceback"
TRACEBACK_ENV = "KALEIDO_TF_TRACEBACK"
EXIT_ERROR = 2

_wanted = [False]

_OS_ADVICE = {
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.EROFS: "it is on a read-only file system: choose another path",
    errno.ENOSPC: "the disk is full: free space there or choose another path",
    errno.EDQUOT: "the disk quota is exhausted: free space there or choose another path",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a directory: check the path",
    errno.EISDIR: "it is a directory where a file is expected: check the path",
    errno.EEXIST: "it exists already: remove it or choose another path",
}

# Lines of TensorFlow's messages that say nothing about the cause.
_TF_NOISE = re.compile(
    r"^(Graph execution error:|Detected at node|Stack trace for op definition|File \"|\[\[|\{\{node|"
    r"Traceback|During handling|Original stack trace|Error in user-defined function passed|"
    r"\[Op:|Additional GRPC error|Node: )"
)


def take_traceback_flag(argv=None):
    """Removes `--traceback` from `argv` (default sys.argv) in place; True when it was there or the
    environment asks for tracebacks."""
    argv = sys.argv if argv is None else argv
    while TRACEBACK_FLAG in argv:
        argv.remove(TRACEBACK_FLAG)
        _wanted[0] = True
    return traceback_wanted()


def traceback_wanted():
    return _wanted[0] or os.environ.get(TRACEBACK_ENV, "").strip().lower() in ("1", "true", "yes")


def _flag_holding(path, argv):
    """The command-line flag whose value is `path` or a directory above it ('' when none)."""
    if not path:
        return ""
    target = os.path.abspath(str(path))
    best, name = -1, ""
    for i, arg in enumerate(argv):
        if not arg.startswith("-"):
            continue
        if "=" in arg:
            flag, value = arg.split("=", 1)
        elif i + 1 < len(argv):
            flag, value = arg, argv[i + 1]
        else:
            continue
        if not value or value.startswith("-"):
            continue
        value = os.path.abspath(value)
        if (target == value or target.startswith(value.rstrip(os.sep) + os.sep)) and len(value) > best:
            best, name = len(value), flag.lstrip("-")
    return f"--{name}" if name else ""


def tensorflow_message(message):
    """The useful lines of a TensorFlow error message, joined into one line."""
    kept = []
    for line in str(message).splitlines():
        line = line.strip()
        if not line or _TF_NOISE.match(line) or line.startswith(("[[", "\t")):
            continue
        line = re.sub(r"\s*\[\[\{\{node [^}]*\}\}\]\]", "", line).strip()
        if line and line not in kept:
            kept.append(line)
    if not kept:
        return str(message).strip().splitlines()[0] if str(message).strip() else "TensorFlow error"
    return " ".join(kept)


def describe(error, argv=None):
    """One line for `error`: what, where and (for file errors) what to do."""
    argv = sys.argv if argv is None else argv
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(error, tf.errors.OpError):
        return tensorflow_message(error.message)
    if isinstance(error, OSError) and error.errno is not None and (error.filename or error.strerror):
        path = error.filename or ""
        flag = _flag_holding(path, argv)
        where = f"{path} (given by {flag})" if flag else str(path)
        reason = (error.strerror or str(error)).lower()
        line = f"{where}: {reason}" if where else reason
        if error.filename2:
            line += f" (and {error.filename2})"
        advice = _OS_ADVICE.get(error.errno)
        return f"{line}; {advice}" if advice else line
    if isinstance(error, KeyError) and len(error.args) == 1:
        text = str(error.args[0])
    else:
        text = str(error) or type(error).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def handled_errors():
    """The exception types turned into one line (TensorFlow's when it is loaded)."""
    types = [OSError, ValueError, LookupError, RuntimeError]
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        types.append(tf.errors.OpError)
    return tuple(types)


def report(prog, error, argv=None):
    """Prints the line (after the traceback when wanted) and returns the exit status."""
    if traceback_wanted():
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    prefix = f"{prog}: error: " if prog else "error: "
    print(prefix + describe(error, argv), file=sys.stderr, flush=True)
    return EXIT_ERROR


def guard(prog, main):
    """`main` whose handled errors become one line and exit status 2 (see the module docstring). A list
    as first argument (the tool's argv) loses `--traceback` first."""

    @functools.wraps(main)
    def guarded(*args, **kwargs):
        given = args[0] if args and isinstance(args[0], list) else []
        take_traceback_flag(given)
        take_traceback_flag()
        argv = given + sys.argv  # absl hands main only what its flags left; sys.argv keeps them
        try:
            return main(*args, **kwargs)
        except Exception as error:
            if not isinstance(error, handled_errors()):
                raise
            return report(prog, error, argv)

    return guarded


def cli(prog):
    """Decorator form of `guard`: `@cli("kaleido-export")` on a tool's main."""
    return functools.partial(guard, prog)
