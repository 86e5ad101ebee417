"""The one spelling of the progress switch on every command-line tool: `--progress` / `--noprogress`.

The absl applications (`pretrain_main`, `finetune_main`) get it from their boolean flag `progress`; the argparse
tools get the same two spellings here. The spellings of earlier versions (`--no_progress`, `--no-progress`,
`--quiet` of `kaleido-csv2tfrecord`) are still accepted but no longer listed by `--help`.
"""

import argparse

DEPRECATED_OFF = ("--no_progress", "--no-progress")


def add_progress_flag(parser, default=True, deprecated=()):
    """Adds `--progress` / `--noprogress` (dest `progress`, `default` when neither is given: True, False or None
    for "only on a terminal") and the hidden old spellings `DEPRECATED_OFF` + `deprecated` to `parser`."""
    when = {True: "on", False: "off", None: "on only on a terminal"}[default]
    parser.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=default,
        help=f"progress bars with rate and ETA; --noprogress: none (default: {when})",
    )
    parser.add_argument("--noprogress", dest="progress", action="store_false", help=argparse.SUPPRESS)
    parser.add_argument(*DEPRECATED_OFF, *deprecated, dest="progress", action="store_false", help=argparse.SUPPRESS)
    return parser
