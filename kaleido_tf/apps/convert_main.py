"""kaleido-convert: TF1 (EasyTransfer) checkpoint -> kaleido_tf directory.

kaleido-convert --tf1_checkpoint checkpoints/pretrained/kaleidobert.ckpt-50683 --output_dir checkpoints/kaleidobert_tf2
"""

import logging
import os
import sys

from absl import app, flags

from kaleido_tf.apps.app_flags import list_in_help
from kaleido_tf.utils import cli_errors
from kaleido_tf.utils.app_logging import configure_app_logging
from kaleido_tf.utils.disk_space import disk_full_error, is_disk_full

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "tf1_checkpoint", None, "TF1 checkpoint prefix, .index file, or directory with a `checkpoint` file."
)
flags.DEFINE_string("output_dir", None, "Directory to write (replaced whole, atomically).")
flags.DEFINE_string("config", None, "config.json to use; default: the one beside the checkpoint.")


@cli_errors.cli("kaleido-convert")
def main(argv):
    del argv
    configure_app_logging(logging.WARNING)  # the summary is printed below, not also through absl's handler
    # local import: TensorFlow loads after the flags are parsed (--help stays fast)
    from kaleido_tf.convert.tf1_converter import CheckpointError  # noqa: PLC0415
    from kaleido_tf.model_zoo.tf1_conversion import convert_tf1_checkpoint  # noqa: PLC0415

    existed = os.path.exists(FLAGS.output_dir)
    try:
        report = convert_tf1_checkpoint(FLAGS.tf1_checkpoint, FLAGS.output_dir, FLAGS.config)
    except Exception as e:
        if is_disk_full(e):  # the conversion is written aside and renamed into place: nothing else changed
            kept = "the previous output there is unchanged" if existed else "no partial output was left"
            e = disk_full_error(
                os.path.abspath(FLAGS.output_dir), e, kept, "free space or use another --output_dir", "the conversion"
            )
        elif not isinstance(e, (CheckpointError, FileNotFoundError, ValueError)):
            raise
        print(f"kaleido-convert: error: {e}", file=sys.stderr)
        return 2
    for line in report.summary_lines():
        print(line)
    print(f"wrote {FLAGS.output_dir}")
    return 0


def run():
    flags.mark_flags_as_required(["tf1_checkpoint", "output_dir"])
    cli_errors.take_traceback_flag()
    list_in_help(__name__)  # --help lists this tool's flags
    app.run(main)


if __name__ == "__main__":
    run()
