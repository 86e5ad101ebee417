"""kaleido-export: a kaleido_tf model (TF1 checkpoint, converted directory or model-zoo name) -> SavedModel.

    kaleido-export --model checkpoints/kaleidobert_tf2 --export_dir serving/kaleido
    kaleido-export --model checkpoints/finetuned/model.ckpt-1000 --task catepred \\
                   --label_map category_map.json --export_dir serving/kaleido_category --version 3
    kaleido-export --model checkpoints/caption --task caption --vocab_file vocab.txt --beam_size 3 \
                   --export_dir serving/kaleido_caption

Writes EXPORT_DIR/<version>/ (default: one after the largest existing version) atomically and prints its
path. Exit status 2 with a one-line message on bad input.
"""

import argparse
import dataclasses
import os
import sys

from kaleido_tf.utils import cli_errors

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="kaleido-export", description="Export a kaleido_tf model as a versioned SavedModel for TF Serving."
    )
    parser.add_argument(
        "--model", required=True, help="TF1 checkpoint, directory written by kaleido-convert, or model-zoo name."
    )
    parser.add_argument(
        "--task",
        default="pretrain",
        choices=("pretrain", "catepred", "subcatepred", "caption"),
        help="pretrain: itm_score/embed signatures; catepred/subcatepred: classify/embed; "
        "caption: the caption signature.",
    )
    parser.add_argument(
        "--num_classes", type=int, default=None, help="classes of a classifier head absent from the checkpoint."
    )
    parser.add_argument("--export_dir", required=True, help="model base directory; the version goes below it.")
    parser.add_argument("--version", default=None, help="integer version (default: next after the largest).")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version.")
    parser.add_argument(
        "--vocab_file",
        default=None,
        help="WordPiece vocab for the raw-text signatures (default: the packaged BERT uncased "
        "vocab, when it fits the model).",
    )
    parser.add_argument(
        "--do_lower_case",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="lower-case and strip accents before WordPiece (BERT uncased).",
    )
    parser.add_argument(
        "--max_text_length",
        type=int,
        default=None,
        help="text length of the signatures (default: the config's text_seq_len).",
    )
    parser.add_argument(
        "--text_signatures",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="include the raw-text signatures (they need the tensorflow-text ops when served).",
    )
    parser.add_argument("--label_map", default=None, help="JSON file {class name: id} for a classifier.")
    parser.add_argument("--beam_size", type=int, default=1, help="caption: beams of generation (1: greedy).")
    parser.add_argument(
        "--max_caption_length",
        type=int,
        default=None,
        help="caption: generated tokens at most, [SEP] included (default: text_seq_len - 1).",
    )
    return parser


@cli_errors.cli("kaleido-export")
def main(argv=None):
    args = build_parser().parse_args(argv)
    # local import: TensorFlow loads after the flags are parsed (--help stays fast)
    from kaleido_tf.convert.tf1_converter import CheckpointError  # noqa: PLC0415
    from kaleido_tf.export.exporter import export_saved_model  # noqa: PLC0415
    from kaleido_tf.model_zoo.registry import from_pretrained  # noqa: PLC0415

    try:
        model_kwargs = {}
        if args.task == "caption":
            # local import: TensorFlow loads after the flags are parsed (--help stays fast)
            from kaleido_tf.export.exporter import DEFAULT_VOCAB  # noqa: PLC0415
            from kaleido_tf.model_zoo.caption_decoding import CaptionTokens  # noqa: PLC0415

            tokens = CaptionTokens.from_vocab_file(args.vocab_file or DEFAULT_VOCAB)
            model_kwargs = dict(
                dataclasses.asdict(tokens), beam_size=args.beam_size, max_caption_length=args.max_caption_length
            )
        model = from_pretrained(args.model, task=args.task, num_classes=args.num_classes, **model_kwargs)
        path = export_saved_model(
            model,
            args.export_dir,
            version=args.version,
            vocab_file=args.vocab_file,
            label_map=args.label_map,
            do_lower_case=args.do_lower_case,
            max_text_length=args.max_text_length,
            overwrite=args.overwrite,
            text_signatures=args.text_signatures,
        )
    except (CheckpointError, FileNotFoundError, FileExistsError, ValueError, TypeError) as e:
        print(f"kaleido-export: error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


def run():
    sys.exit(main())


if __name__ == "__main__":
    run()
