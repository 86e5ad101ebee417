"""`kaleido-index`: build a search index of a preprocessed catalog, search it, evaluate the full-gallery protocol.

    kaleido-index build --model_dir M --data_dir D --output_dir I [--splits train,valid,test] [--batch_size 64]
    kaleido-index search --index_dir I (--text "red striped t-shirt" | --product_id P) [--top_k 10]
                         [--rerank K] [--json] [--model_dir M]
    kaleido-index evaluate --model_dir M --data_dir D [--split test] [--json]

M is a model directory the model zoo loads as a retrieval model (a converted checkpoint, a training model_dir)
or a saved `.keras` model with the search interface. Every failure is one line on stderr and exit status 2
(`--traceback` shows the traceback).
"""

import argparse
import json
import logging
import os
import sys

from kaleido_tf.utils import cli_errors
from kaleido_tf.utils.progress_flag import add_progress_flag

PROG = "kaleido-index"
EXIT_USAGE = 2


def load_model(model_dir):
    """The search model at `model_dir`: a `.keras` file, else the model zoo's retrieval model."""
    if not model_dir:
        raise ValueError("no model: give --model_dir (the index records none)")
    if not os.path.exists(model_dir):
        raise FileNotFoundError(f"--model_dir {model_dir}: no such file or directory")
    if model_dir.endswith(".keras"):
        # local import: TensorFlow and the model load after the flags are parsed (--help stays fast)
        import keras  # noqa: PLC0415

        return keras.saving.load_model(model_dir, compile=False)
    # local import: TensorFlow and the model load after the flags are parsed (--help stays fast)
    from kaleido_tf.model_zoo import registry  # noqa: PLC0415

    try:
        return registry.from_pretrained(model_dir, task="retrieval")
    except ValueError as e:
        raise ValueError(f"--model_dir {model_dir}: cannot load a retrieval model ({e})") from None


def build_tokenizer_for(settings):
    # local import: TensorFlow and the model load after the flags are parsed (--help stays fast)
    from kaleido_tf.preprocessors.text_tokenizer import build_tokenizer  # noqa: PLC0415

    return build_tokenizer(
        settings.get("tokenizer", "wordpiece"),
        vocab=settings.get("vocab"),
        spm_model=settings.get("spm_model"),
        lower_case=settings.get("lower_case"),
    )


def build_parser():
    parser = argparse.ArgumentParser(prog=PROG, description="Search a preprocessed catalog with a Kaleido-BERT model.")
    parser.add_argument("--traceback", action="store_true", help="show the traceback of a failure")
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="embed every image and text of a catalog")
    build.add_argument("--model_dir", required=True)
    build.add_argument("--data_dir", required=True, help="a preprocessing output, or a finetune shard directory")
    build.add_argument("--output_dir", required=True)
    build.add_argument("--splits", default="train,valid,test", help="splits of a preprocessing output to index")
    build.add_argument("--batch_size", type=int, default=64)
    build.add_argument("--overwrite", action="store_true", help="replace an existing index")
    add_progress_flag(build, default=None)  # --progress / --noprogress; default: on only on a terminal

    search = commands.add_parser("search", help="the products best matching a text or a product")
    search.add_argument("--index_dir", required=True)
    query = search.add_mutually_exclusive_group(required=True)
    query.add_argument("--text", help="a text query (searched against the product images)")
    query.add_argument("--product_id", help="a product of the index (its first image against the product texts)")
    search.add_argument("--top_k", type=int, default=10)
    search.add_argument("--rerank", type=int, default=None, metavar="K", help="re-score the first K with ITM")
    search.add_argument("--model_dir", default=None, help="default: the model the index was built with")
    search.add_argument("--batch_size", type=int, default=64)
    search.add_argument("--json", action="store_true", help="print one JSON object")

    evaluate = commands.add_parser("evaluate", help="the full-gallery retrieval protocol on a split")
    evaluate.add_argument("--model_dir", required=True)
    evaluate.add_argument("--data_dir", required=True)
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--rerank_k", default="16,64,128", help="ITC candidates re-scored by ITM")
    evaluate.add_argument("--exhaustive_limit", type=int, default=None, help="largest gallery scored by ITM in full")
    evaluate.add_argument("--batch_size", type=int, default=64)
    evaluate.add_argument("--json", action="store_true")
    return parser


def _build(args):
    # local import: TensorFlow and the model load after the flags are parsed (--help stays fast)
    from kaleido_tf.index.builder import build_index  # noqa: PLC0415

    model = load_model(args.model_dir)
    splits = tuple(s for s in args.splits.split(",") if s)
    index = build_index(
        model,
        args.data_dir,
        args.output_dir,
        splits=splits,
        batch_size=args.batch_size,
        model_dir=args.model_dir,
        progress=args.progress,
        overwrite=args.overwrite,
    )
    print(f"index of {index.num_products} products and {index.num_images} images written to {args.output_dir}")


def _search(args):
    # local import: TensorFlow and the model load after the flags are parsed (--help stays fast)
    from kaleido_tf.index.errors import SearchIndexError  # noqa: PLC0415
    from kaleido_tf.index.fingerprint import model_fingerprint  # noqa: PLC0415
    from kaleido_tf.index.query import check_sizes, encode_query, search_product, search_text  # noqa: PLC0415
    from kaleido_tf.index.store import SearchIndex  # noqa: PLC0415

    index = SearchIndex.load(args.index_dir)
    top_k, rerank, warnings = check_sizes(index, args.top_k, args.rerank)
    if args.text is not None and not args.text.strip():
        raise SearchIndexError("--text is empty: give the words to search for")  # before loading a model
    if args.product_id is not None:
        index.product_row(args.product_id)  # an unknown product is refused before loading a model
    for warning in warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    model = None
    if args.text is not None or rerank:
        model_dir = args.model_dir or index.manifest.get("model_dir")
        model = load_model(model_dir)
        index.check_model(model_fingerprint(model), where=f"the model at {model_dir}")
    if args.text is not None:
        tokenizer = build_tokenizer_for(index.manifest.get("settings", {}))
        features = encode_query(tokenizer, args.text, index.manifest["text_length"])
        hits = search_text(index, model, features, top_k, rerank, args.batch_size)
        query = {"text": args.text}
    else:
        hits = search_product(index, model, args.product_id, top_k, rerank, args.batch_size)
        query = {"product_id": args.product_id}
    if args.json:
        print(json.dumps({"query": query, "rerank": rerank, "results": [h.as_dict() for h in hits]}))
        return
    for h in hits:
        extra = f"\titc={h.itc_score:.4f}" if h.itm_score is not None else ""
        print(f"{h.rank}\t{h.product_id}\t{h.score:.4f}{extra}")


def _evaluate(args):
    # local import: TensorFlow and the model load after the flags are parsed (--help stays fast)
    from kaleido_tf.evaluators.retrieval_full import format_full_report  # noqa: PLC0415
    from kaleido_tf.index.evaluate import evaluate_catalog  # noqa: PLC0415

    ks = tuple(int(k) for k in args.rerank_k.split(",") if k)
    model = load_model(args.model_dir)
    kwargs = {} if args.exhaustive_limit is None else {"exhaustive_limit": args.exhaustive_limit}
    metrics = evaluate_catalog(model, args.data_dir, split=args.split, ks=ks, batch_size=args.batch_size, **kwargs)
    print(json.dumps(metrics, sort_keys=True) if args.json else format_full_report(metrics))


COMMANDS = {"build": _build, "search": _search, "evaluate": _evaluate}


def _main(argv):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return EXIT_USAGE if e.code else 0
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(levelname)s: %(message)s")
    try:
        COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except ImportError as e:  # a missing optional package (tensorflow_text, ...): still one line
        raise RuntimeError(f"{args.command}: {e}; install the missing package") from e
    return 0


def main(argv=None):
    """Runs the command on `argv` (default sys.argv[1:]); returns the exit status. A failure is one line and
    exit status 2 (`kaleido_tf.utils.cli_errors`; `--traceback` shows the traceback)."""
    return cli_errors.guard(PROG, _main)(list(sys.argv[1:] if argv is None else argv))


def run():
    """Console-script entry point."""
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run()
