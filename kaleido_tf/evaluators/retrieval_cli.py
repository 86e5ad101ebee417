"""`kaleido-eval-retrieval`: scores retrieval result files.

    kaleido-eval-retrieval --results eval_txt2img_results.txt --type txt2img
    kaleido-eval-retrieval --results part-0.txt part-1.txt --type img2txt --json

Prints Accuracy, Rank@1/5/10/100 and AUC one per line, or with ``--json`` one JSON object with the
keys accuracy, rank@1, rank@5, rank@10, rank@100, auc (null when undefined), queries and pairs.
A missing or malformed file or a bad flag prints a message on stderr and exits with status 2.

`--protocol sample100` (the default) is the original 1 + 100 candidates of the result files. The full-gallery
protocol ranks every product of a split against all the others and needs the model, not a result file: its
entry point is `kaleido-index evaluate --model_dir M --data_dir D` (docs/search.md); `--protocol full` here
says so and exits with status 2.
"""

import argparse
import json
import math
import sys

from kaleido_tf.evaluators.retrieval import check_query_type, format_retrieval_report, score_retrieval
from kaleido_tf.evaluators.retrieval_format import RETRIEVAL_TYPES, read_retrieval_results
from kaleido_tf.evaluators.retrieval_full import PROTOCOLS
from kaleido_tf.utils import cli_errors
from kaleido_tf.utils.progress_flag import add_progress_flag

PROG = "kaleido-eval-retrieval"
EXIT_USAGE = 2
FULL_PROTOCOL_ENTRY = "needs the model, run `kaleido-index evaluate --model_dir M --data_dir D`"


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG, description="Score image-text retrieval result files (Accuracy, Rank@1/5/10/100, AUC)."
    )
    parser.add_argument(
        "--results",
        required=True,
        nargs="+",
        metavar="FILE",
        help="result file(s) written in predict mode, one line per batch",
    )
    parser.add_argument(
        "--type",
        required=True,
        choices=RETRIEVAL_TYPES,
        help="txt2img: queries keyed by text_prod_id; img2txt: by image_prod_id",
    )
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="sample100",
        help=f"sample100: the result files' 1 + 100 candidates; full: {FULL_PROTOCOL_ENTRY}",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_progress_flag(parser, default=None)
    return parser


def metrics_to_json(metrics):
    """JSON text of a metrics dict; an undefined (NaN) AUC becomes null."""
    clean = {}
    for key, value in metrics.items():
        if isinstance(value, float) and math.isnan(value):
            value = None
        clean[key] = value
    return json.dumps(clean, allow_nan=False)


@cli_errors.cli("kaleido-eval-retrieval")
def main(argv=None):
    """Runs the command on `argv` (default sys.argv[1:]); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse has printed usage and the error on stderr
        return EXIT_USAGE if e.code else 0
    if args.protocol == "full":
        print(
            f"{PROG}: error: --protocol full ranks a whole split, which a result file of 1 + 100 candidates "
            f"cannot: it {FULL_PROTOCOL_ENTRY}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        results = read_retrieval_results(args.results, progress=args.progress)
        check_query_type(results, args.type)
        metrics = score_retrieval(results, type=args.type)
    except OSError as e:
        name = e.filename if e.filename is not None else ""
        print(f"{PROG}: error: cannot read {name}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(metrics_to_json(metrics))
    else:
        print(format_retrieval_report(metrics))
    return 0


def run():
    """Console-script entry point: parses sys.argv and exits with the status."""
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run()
