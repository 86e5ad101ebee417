"""The start of the absl tools (pretrain_main, finetune_main): flags first, then TensorFlow, failures in one line."""

from absl import app

from kaleido_tf.apps import app_flags
from kaleido_tf.utils.cli_errors import guard, take_traceback_flag


def run_absl_tool(main):
    """Runs `main(argv)` under absl: `--traceback` taken, `--help` listing the shared flags, out-of-range flags
    refused before TensorFlow loads, and every failure turned into one line by the runner's wrapper (exit 2)."""
    take_traceback_flag()  # --traceback: the full trace of a failure
    app_flags.list_in_help(app_flags.__name__)  # --help lists this tool's flags

    def with_error_lines(argv):
        refused = guard("", app_flags.check_flag_ranges)()  # a bad flag is answered at once, before any import
        if refused:
            return refused
        # local import: TensorFlow loads after the flags are parsed and checked (--help and refusals stay fast)
        from kaleido_tf.apps.runner import main_wrapper  # noqa: PLC0415

        return main_wrapper(main)(argv)

    app.run(with_error_lines)
