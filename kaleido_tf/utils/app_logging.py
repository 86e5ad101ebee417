"""What the command-line applications print about their work, each sentence once: `say` and the library's log.

The library logs what it does on the `kaleido_tf` logger and often returns the same sentence to its caller
(`Trainer.initialize`, `registry.load_weights`, `export_saved_model`), which an application prints. Under absl's
`app.run` the root logger has absl's handler, so a sentence used to come out twice or three times: once as
absl's `I1203 10:01:48 trainer.py:199] ...` line, once (or twice) from the application. `configure_app_logging`
gives the `kaleido_tf` logger one handler of its own, `[kaleido_tf] ...` on stdout (`[kaleido_tf] WARNING: ...`
for warnings), that does not pass its records on to the root logger, and drops a sentence that repeats the one
printed just before it; `say` prints through it. Calling it again adds no second handler.
"""

import logging
import sys

LOGGER_NAME = "kaleido_tf"
PREFIX = "[kaleido_tf] "


class _Formatter(logging.Formatter):
    def format(self, record):
        text = record.getMessage()
        if record.levelno >= logging.WARNING:
            text = f"{record.levelname}: {text}"
        return PREFIX + text


class _NotTwice(logging.Filter):
    """Drops a record whose text is the text printed just before (a sentence logged by the library, then
    printed by the application that got it back)."""

    def __init__(self):
        super().__init__()
        self.last = None

    def filter(self, record):
        text = record.getMessage()
        if text == self.last:
            return False
        self.last = text
        return True


class _AppHandler(logging.StreamHandler):
    """The handler `configure_app_logging` installs (found again by its class)."""

    def __init__(self):
        super().__init__()
        self.addFilter(_NotTwice())
        self.setFormatter(_Formatter())

    @property
    def stream(self):  # the current sys.stdout, also when a test or a caller replaces it
        return sys.stdout

    @stream.setter
    def stream(self, value):
        del value


def configure_app_logging(level=logging.INFO):
    """Gives the `kaleido_tf` logger its one handler (see the module docstring); returns the logger."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, _AppHandler) for h in logger.handlers):
        logger.addHandler(_AppHandler())
    logger.setLevel(level)
    logger.propagate = False
    return logger


def say(message):
    """Prints `message` as `[kaleido_tf] message` on stdout: through the application's handler once
    `configure_app_logging` has run (so not twice in a row), else directly."""
    logger = logging.getLogger(LOGGER_NAME)
    if any(isinstance(h, _AppHandler) for h in logger.handlers):
        logger.info(message)
    else:
        print(PREFIX + message, flush=True)
