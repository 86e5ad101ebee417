"""`kaleido-preprocess`: product catalog (images + text) -> TFRecord shards for kaleido_tf.

    kaleido-preprocess --catalog catalog.jsonl --output_dir data/ --task all \
        --feature_extractor resnet50 --resnet_weights resnet50_notop.weights.h5

    # the same on 8 machines, machine 3:
    kaleido-preprocess --catalog catalog.jsonl --output_dir data/ --num_shards 8 --shard_index 3

See docs/preprocessing.md for the catalog format, the outputs and every setting.
"""

import argparse
import json
import os
import sys

from kaleido_tf.preprocessors.config import PreprocessConfig
from kaleido_tf.preprocessors.feature_extractor import EXTRACTOR_NAMES
from kaleido_tf.utils import cli_errors
from kaleido_tf.utils.progress_flag import add_progress_flag


def _bool(text):
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "y", "on"):
        return True
    if value in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser():
    d = PreprocessConfig(catalog="", output_dir="")
    p = argparse.ArgumentParser(
        prog="kaleido-preprocess",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("input and output")
    g.add_argument("--catalog", required=True, help="catalog file (.jsonl or .csv)")
    g.add_argument("--output_dir", required=True, help="directory for shards, label maps and reports")
    g.add_argument("--task", default=d.task, help="pretrain, finetune, retrieval or all (comma-separated list ok)")
    g.add_argument("--alignments", default=None, help="token-patch alignments JSONL for alignment-guided masking")
    g.add_argument("--label_maps", default=None, help="directory with category.json/subcategory.json to reuse")
    g.add_argument("--seed", type=int, default=d.seed, help="seed of every random choice")
    g.add_argument(
        "--bad_records",
        choices=("error", "reject"),
        default=d.bad_records,
        help="a bad catalog record stops the run (error) or is logged in rejected.tsv (reject)",
    )
    g.add_argument("--overwrite", action="store_true", help="redo shards that are already finished")
    add_progress_flag(g)
    g = p.add_argument_group("images and patches")
    g.add_argument("--foreground", choices=("saliency", "none"), default=d.foreground)
    g.add_argument("--foreground_threshold", type=float, default=d.foreground_threshold)
    g.add_argument("--foreground_min_fraction", type=float, default=d.foreground_min_fraction)
    g.add_argument("--min_image_size", type=int, default=d.min_image_size, help="reject shorter sides (px)")
    g.add_argument("--max_image_size", type=int, default=d.max_image_size, help="downscale longer sides (px)")
    g.add_argument("--crop_size", type=int, default=d.crop_size, help="side of each resized crop (px)")
    g = p.add_argument_group("features")
    g.add_argument("--feature_extractor", choices=EXTRACTOR_NAMES, default=d.feature_extractor)
    g.add_argument("--resnet_weights", default=None, help="Keras weights file for ResNet50(include_top=False)")
    g.add_argument(
        "--feature_model",
        default=None,
        help="with --feature_extractor keras: a saved .keras model, crops in [0, 1] -> features",
    )
    g.add_argument(
        "--feature_seed",
        type=int,
        default=d.feature_seed,
        help="seed of the random ResNet initialisation / the pixel projection",
    )
    g.add_argument("--patch_feature_size", type=int, default=d.patch_feature_size)
    g.add_argument(
        "--image_path",
        choices=("pil", "graph"),
        default=d.image_path,
        help="graph: patch features through the TF-ops image path (batched, GPU when visible); see docs/raw_images.md",
    )
    g.add_argument("--mixed_bfloat16", action="store_true", help="with --image_path graph: bfloat16 ResNet-50")
    g.add_argument("--feature_dtype", choices=("float16", "float32"), default=d.feature_dtype)
    g.add_argument("--compression", choices=("none", "gzip"), default="none")
    g.add_argument("--batch_size", type=int, default=d.batch_size, help="crops per feature-extractor batch")
    g.add_argument(
        "--images_per_chunk", type=int, default=d.images_per_chunk, help="images whose crops are extracted together"
    )
    g.add_argument(
        "--feature_cache_size", type=int, default=d.feature_cache_size, help="retrieval: image features kept in memory"
    )
    g = p.add_argument_group("text")
    g.add_argument("--tokenizer", choices=("wordpiece", "sentencepiece"), default=d.tokenizer)
    g.add_argument("--vocab", default=None, help="WordPiece vocab.txt (default: the packaged BERT uncased one)")
    g.add_argument("--spm_model", default=None, help="SentencePiece model file")
    g.add_argument(
        "--lower_case",
        type=_bool,
        default=None,
        help="lower-case text (default: true for wordpiece, false for sentencepiece)",
    )
    g.add_argument("--text_length", type=int, default=d.text_length)
    g.add_argument("--max_predictions", type=int, default=d.max_predictions)
    g.add_argument("--masked_lm_prob", type=float, default=d.masked_lm_prob)
    g.add_argument("--whole_word_mask", action="store_true", help="mask whole words")
    g = p.add_argument_group("kaleido tasks and pairs")
    g.add_argument("--num_grey", type=int, default=d.num_grey)
    g.add_argument("--num_blank", type=int, default=d.num_blank)
    g.add_argument(
        "--camouflage_none_class", action="store_true", help="10 camouflage labels: label 9 = no patch replaced"
    )
    g.add_argument("--neg_ratio", type=float, default=d.neg_ratio, help="ITM negatives per positive")
    g.add_argument(
        "--itm_easy_negatives",
        type=float,
        default=d.itm_easy_negatives,
        help="share of ITM negatives taken from other categories instead of the same subcategory",
    )
    g.add_argument(
        "--split_seed",
        type=int,
        default=None,
        help="seed of the hash split of products without a 'split' (default: --seed)",
    )
    g.add_argument("--valid_fraction", type=float, default=d.valid_fraction)
    g.add_argument("--test_fraction", type=float, default=d.test_fraction)
    g = p.add_argument_group("retrieval")
    g.add_argument("--retrieval_split", choices=("train", "valid", "test"), default=d.retrieval_split)
    g.add_argument("--retrieval_queries", type=int, default=d.retrieval_queries)
    g.add_argument("--retrieval_negatives", type=int, default=d.retrieval_negatives)
    g = p.add_argument_group("sharding")
    g.add_argument("--num_shards", type=int, default=d.num_shards)
    g.add_argument("--shard_index", type=int, default=d.shard_index)
    return p


def config_from_args(args):
    values = vars(args).copy()
    values["compression"] = None if values["compression"] == "none" else "GZIP"
    return PreprocessConfig(**values)


@cli_errors.cli("kaleido-preprocess")
def main(argv=None):
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # local import: TensorFlow loads after the flags are parsed (--help stays fast)
    from kaleido_tf.preprocessors.pipeline import Preprocessor  # noqa: PLC0415

    try:
        summary = Preprocessor(config_from_args(args)).run()
    except (ValueError, FileNotFoundError) as e:
        print(f"kaleido-preprocess: error: {e}", file=sys.stderr)
        return 2
    brief = {k: summary[k] for k in ("catalog_index", "rejected") if k in summary}
    for task in ("pretrain", "finetune", "retrieval"):
        if task in summary:
            brief[task] = {k: v for k, v in summary[task].items() if k in ("examples", "txt2img", "img2txt", "notes")}
    print(json.dumps(brief, indent=2, sort_keys=True))
    print(f"wrote {os.path.join(args.output_dir, 'summary.json')}")
    return 0


def run():
    """Console entry point (parses sys.argv)."""
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run()
