"""kaleido-export: a kaleido_tf model (TF1 checkpoint, converted directory or model-zoo name) -> SavedModel.

    kaleido-export --model checkpoints/kaleidobert_tf2 --export_dir serving/kaleido
    kaleido-export --model checkpoints/finetuned/model.ckpt-1000 --task catepred \\
                   --label_map category_map.json --export_dir serving/kaleido_category --version 3
    kaleido-export --model checkpoints/caption --task caption --vocab_file vocab.txt --beam_size 3 \
                   --export_dir serving/kaleido_caption
    kaleido-export --model checkpoints/finetuned --task catepred --preprocess_dir data/prep \
                   --export_dir serving/kaleido_category        # + classify_image (JPEG/PNG bytes in)

Writes EXPORT_DIR/<version>/ (default: one after the largest existing version) atomically and prints its
path. Exit status 2 with a one-line message on bad input.
"""

import argparse
import dataclasses
import os
import sys

from kaleido_tf.utils import cli_errors
from kaleido_tf.utils.label_map import names_by_id, read_label_map

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
        choices=("pretrain", "catepred", "subcatepred", "caption", "retrieval"),
        help="pretrain: itm_score/embed signatures; catepred/subcatepred: classify/embed; "
        "caption: the caption signature; retrieval: embed_text/embed_image/itm_score.",
    )
    parser.add_argument(
        "--num_classes",
        type=int,
        default=None,
        help="classes of a classifier head absent from the checkpoint (default: the --label_map's count, else 48).",
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
    raw = parser.add_argument_group("raw-input signatures (image bytes and text in; docs/serving.md)")
    raw.add_argument(
        "--preprocess_dir",
        default=None,
        help="the kaleido-preprocess output the model's data came from: adds classify_image / itm_score_raw / "
        "embed_image_raw / caption_image with its image settings (summary.json).",
    )
    raw.add_argument(
        "--resnet_weights", default=None, help="with --preprocess_dir: where the ResNet-50 weights file is now."
    )
    raw.add_argument(
        "--feature_model", default=None, help="with --preprocess_dir: where the saved .keras feature model is now."
    )
    raw.add_argument("--max_pixels", type=int, default=None, help="images whose header claims more pixels are refused.")
    raw.add_argument(
        "--index_dir",
        default=None,
        help="retrieval: a kaleido-index build directory: adds search_text / search_image over its catalog.",
    )
    raw.add_argument("--top_k", type=int, default=10, help="results of search_* and ranked classes of classify_*.")
    return parser


def _image_path(args):
    if args.preprocess_dir is None:
        for flag in ("resnet_weights", "feature_model", "max_pixels", "index_dir"):
            if getattr(args, flag) is not None:
                raise ValueError(f"--{flag} needs --preprocess_dir (the preprocessing settings of the images)")
        return None
    from kaleido_tf.export.image_inputs import ImagePathSettings  # noqa: PLC0415

    return ImagePathSettings.from_preprocess_dir(
        args.preprocess_dir,
        resnet_weights=args.resnet_weights,
        feature_model=args.feature_model,
        max_pixels=args.max_pixels,
    )


def classifier_classes(args, head_classes):
    """The classes of a classifier head to build: --num_classes; else the checkpoint's head (`head_classes()`,
    None when it holds none: a training model_dir, a pretraining checkpoint); else the label map's count (its
    largest id + 1). A --num_classes that disagrees with the label map is an error naming both."""
    if args.task not in ("catepred", "subcatepred") or args.label_map is None:
        return args.num_classes
    count = len(names_by_id(read_label_map(args.label_map), source=args.label_map))
    if args.num_classes is not None and args.num_classes != count:
        raise ValueError(
            f"--num_classes={args.num_classes} disagrees with --label_map {args.label_map}, which names "
            f"{count} classes (ids 0 to {count - 1}): leave out --num_classes (the label map decides) or give a "
            f"label map of {args.num_classes} classes"
        )
    if head_classes() is not None:
        return None  # the checkpoint's head decides; the label map's ids must lie below it (checked on export)
    return count


@cli_errors.cli("kaleido-export")
def main(argv=None):
    args = build_parser().parse_args(argv)
    # local import: TensorFlow loads after the flags are parsed (--help stays fast)
    from kaleido_tf.convert.tf1_converter import CheckpointError  # noqa: PLC0415
    from kaleido_tf.export.exporter import export_saved_model  # noqa: PLC0415
    from kaleido_tf.index.errors import SearchIndexError  # noqa: PLC0415
    from kaleido_tf.model_zoo.registry import checkpoint_head_classes, from_pretrained  # noqa: PLC0415

    try:
        if args.top_k < 1:
            raise ValueError(f"--top_k must be >= 1, got {args.top_k}")
        image_path = _image_path(args)
        model_kwargs = {}
        if args.task == "caption":
            # local import: TensorFlow loads after the flags are parsed (--help stays fast)
            from kaleido_tf.model_zoo.caption_decoding import CaptionTokens  # noqa: PLC0415
            from kaleido_tf.utils.vocab import DEFAULT_VOCAB  # noqa: PLC0415

            tokens = CaptionTokens.from_vocab_file(args.vocab_file or DEFAULT_VOCAB)
            model_kwargs = dict(
                dataclasses.asdict(tokens), beam_size=args.beam_size, max_caption_length=args.max_caption_length
            )
        num_classes = classifier_classes(args, lambda: checkpoint_head_classes(args.model, args.task))
        model = from_pretrained(args.model, task=args.task, num_classes=num_classes, **model_kwargs)
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
            image_path=image_path,
            index_dir=args.index_dir,
            top_k=args.top_k,
        )
    except (CheckpointError, SearchIndexError, FileNotFoundError, FileExistsError, ValueError, TypeError) as e:
        print(f"kaleido-export: error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


def run():
    sys.exit(main())


if __name__ == "__main__":
    run()
