"""The demo's last stage: what the catalog search page (`kaleido-serve`, `make search-demo`) needs.

It runs after every metric stage and draws no random numbers of theirs: it only loads the trained runs and
writes, under the demo's output folder,

    catalog_index/         the whole catalog (every split) embedded by the search model: the shop's gallery
    export/retrieval/1     the search model with raw-input signatures (embed_image_raw from image bytes) and
                           search_text / search_image over catalog_index
    runs/<task>_image      category / subcategory classifiers finetuned from the pretrained weights on images
                           alone (the text blanked to [CLS] [SEP]): a photo comes without its product text, and
                           the demo's classifiers, trained on text and image, read the class off the text (on
                           images alone they fall from 0.84 to 0.36 category accuracy at the quick size)
    export/category/1      that category classifier, classify_image from image bytes
    export/subcategory/1   the same for subcategories
    export/caption/1       the captioner, caption_image from bytes

The raw-input signatures compute patch features in the graph with the preprocessing settings of the demo's
data folder (its summary.json), as `kaleido-export --preprocess_dir` does. `serve_arguments` is the
kaleido-serve command line over those folders; summary.json records it under "serve".
"""

import os

# The page's gallery is the whole catalog; the search stage's own index (index/) holds the test split only, for
# the full-gallery protocol.
CATALOG_INDEX = "catalog_index"
CLASSIFIERS = (("catepred", "category"), ("subcatepred", "subcategory"))  # finetuning task, export name


def serve_arguments(out):
    """The kaleido-serve arguments over the demo output folder `out` (absolute paths)."""
    out = os.path.abspath(out)
    return [
        "--export_dir",
        os.path.join(out, "export"),
        "--index_dir",
        os.path.join(out, CATALOG_INDEX),
        "--catalog",
        os.path.join(out, "catalog", "catalog.jsonl"),
    ]


def image_only(features, prefix_ids):
    """`features` (a batch of the finetuning data) with the text replaced by `prefix_ids` ([CLS] [SEP]) and
    padding, as the raw-image signatures feed a photo."""
    # local import: TensorFlow and each stage load after the arguments are parsed (--help stays fast)
    import tensorflow as tf  # noqa: PLC0415

    ids = features["input_ids"]  # [B, T]
    length = tf.shape(ids)[1]
    prefix = tf.constant(prefix_ids, ids.dtype)  # [P]
    row = tf.concat([prefix, tf.zeros([length - len(prefix_ids)], ids.dtype)], 0)  # [T]
    mask = tf.cast(tf.range(length) < len(prefix_ids), features["input_mask"].dtype)  # [T]
    batch = tf.shape(ids)[0]
    out = dict(features)
    out["input_ids"] = tf.tile(row[None, :], [batch, 1])
    out["input_mask"] = tf.tile(mask[None, :], [batch, 1])
    out["segment_ids"] = tf.zeros_like(features["segment_ids"])
    return out


def finetune_image_classifiers(out, data, steps, stage, progress=False, batch=32):
    """The category and subcategory classifiers on images alone (module docstring), finetuned from
    `out`/runs/pretrain; returns {name: (run directory, held-out accuracy on images alone)}."""
    # local import: TensorFlow and each stage load after the arguments are parsed (--help stays fast)
    from kaleido_tf.datasets import make_tfrecord_dataset  # noqa: PLC0415
    from kaleido_tf.engines import Trainer  # noqa: PLC0415
    from kaleido_tf.model_zoo import registry  # noqa: PLC0415
    from kaleido_tf.model_zoo.kaleidobert_config import KaleidoBERTConfig  # noqa: PLC0415
    from kaleido_tf.model_zoo.kaleidobert_retrieval_model import image_prefix_ids_from_vocab  # noqa: PLC0415
    from kaleido_tf.tasks import ClassificationTask  # noqa: PLC0415
    from kaleido_tf.utils.label_map import read_label_map  # noqa: PLC0415

    pretrain_dir = os.path.join(out, "runs", "pretrain")
    config = KaleidoBERTConfig.from_json_file(os.path.join(pretrain_dir, "config.json"))
    prefix = image_prefix_ids_from_vocab(os.path.join(out, "vocab.txt"))

    def dataset(split, size, training):
        def make(context):
            ds = make_tfrecord_dataset(
                os.path.join(data, "finetune", split),
                size,
                training,
                input_context=context,
                num_epochs=None if training else 1,
            )
            return ds.map(lambda f: image_only(f, prefix))

        return make

    results = {}
    for task, name in CLASSIFIERS:
        label_map = read_label_map(os.path.join(data, "label_maps", f"{name}.json"))
        names = [n for n, _ in sorted(label_map.items(), key=lambda kv: kv[1])]
        with stage(f"serve: {name} classifier on images alone"):
            run_dir = os.path.join(out, "runs", f"{task}_image")
            trainer = Trainer(
                ClassificationTask(config, task=task, num_classes=len(names), class_names=names),
                run_dir,
                learning_rate=2e-3,
                train_steps=steps,
                log_steps=10,
                progress=progress,
            )
            print(trainer.initialize(lambda m: registry.load_weights(m, pretrain_dir)))
            trainer.train(dataset("train", batch, True), batch)
            accuracy = float(trainer.evaluate(dataset("test", 64, False))["accuracy"])
            print(f"{name} accuracy on images alone, held-out: {accuracy:.3f} (chance {1 / len(names):.3f})")
            results[name] = (run_dir, accuracy)
    return results


def export_for_page(out, data, search_model, stage, progress=False, caption=True, classifier_steps=120):
    """Builds the catalog index, the image-only classifiers and the page's exports (module docstring) from the
    demo's runs in `out`; returns {"args": kaleido-serve arguments, "catalog": catalog file, "exports": {name:
    path}, "index": dir, "image_accuracy": {name: held-out accuracy of the classifier on images alone}}."""
    # local import: TensorFlow and each stage load after the arguments are parsed (--help stays fast)
    from kaleido_tf.export import export_saved_model  # noqa: PLC0415
    from kaleido_tf.export.image_inputs import ImagePathSettings  # noqa: PLC0415
    from kaleido_tf.index import build_index  # noqa: PLC0415
    from kaleido_tf.model_zoo import registry  # noqa: PLC0415
    from kaleido_tf.utils.label_map import read_label_map  # noqa: PLC0415

    vocab = os.path.join(out, "vocab.txt")
    index_dir = os.path.join(out, CATALOG_INDEX)
    with stage("serve: catalog index"):
        build_index(
            search_model,
            data,
            index_dir,
            splits=("train", "valid", "test"),
            batch_size=128,
            model_dir=os.path.join(out, "runs", "search"),
            progress=progress,
            overwrite=True,
        )
    classifiers = finetune_image_classifiers(out, data, classifier_steps, stage, progress=progress)
    exports = {}
    with stage("serve: exports"):
        image_path = ImagePathSettings.from_preprocess_dir(data)
        exports["retrieval"] = export_saved_model(
            search_model,
            os.path.join(out, "export", "retrieval"),
            vocab_file=vocab,
            image_path=image_path,
            index_dir=index_dir,
            version=1,
            overwrite=True,
        )
        for task, name in CLASSIFIERS:
            label_map = os.path.join(data, "label_maps", f"{name}.json")
            model = registry.from_pretrained(
                classifiers[name][0], task=task, num_classes=len(read_label_map(label_map))
            )
            exports[name] = export_saved_model(
                model,
                os.path.join(out, "export", name),
                vocab_file=vocab,
                label_map=label_map,
                image_path=image_path,
                version=1,
                overwrite=True,
            )
        if caption:
            exports["caption"] = _export_captioner(out, vocab, image_path)
        for name, path in exports.items():
            print(f"SavedModel ({name}): {path}")
    args = serve_arguments(out)
    return {
        "args": args,
        "catalog": args[-1],
        "exports": exports,
        "index": index_dir,
        "image_accuracy": {name: accuracy for name, (_, accuracy) in classifiers.items()},
    }


def _export_captioner(out, vocab, image_path):
    # local import: TensorFlow and each stage load after the arguments are parsed (--help stays fast)
    import dataclasses  # noqa: PLC0415

    from kaleido_tf.export import export_saved_model  # noqa: PLC0415
    from kaleido_tf.model_zoo import registry  # noqa: PLC0415
    from kaleido_tf.model_zoo.caption_decoding import CaptionTokens  # noqa: PLC0415

    tokens = CaptionTokens.from_vocab_file(vocab)
    model = registry.from_pretrained(os.path.join(out, "runs", "caption"), task="caption", **dataclasses.asdict(tokens))
    return export_saved_model(
        model,
        os.path.join(out, "export", "caption"),
        vocab_file=vocab,
        image_path=image_path,
        version=1,
        overwrite=True,
    )


def main(argv=None):
    """Runs this stage again over a finished demo's output folder (`--output_dir`): rebuilds the catalog index,
    the image-only classifiers and the page's exports, and records kaleido-serve's arguments in summary.json."""
    # local import: the demo's sizes and stage timer live with the demo's entry point
    import argparse  # noqa: PLC0415
    import json  # noqa: PLC0415

    from kaleido_tf.demo.stages import Stages  # noqa: PLC0415
    from kaleido_tf.utils import cli_errors  # noqa: PLC0415
    from kaleido_tf.utils.io import atomic_write_text  # noqa: PLC0415

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--output_dir", default="demo_out", help="the folder of a finished `python -m kaleido_tf.demo.run`")
    p.add_argument(
        "--classifier_steps",
        type=int,
        default=120,
        help="finetuning steps of each classifier (the demo's: 120 quick, 400 full)",
    )
    p.add_argument("--no_progress", action="store_true")

    def run(argv):
        args = p.parse_args(argv)
        out = os.path.abspath(args.output_dir)
        summary_path = os.path.join(out, "summary.json")
        with open(summary_path, encoding="utf-8") as f:
            summary = json.load(f)
        # local import: TensorFlow loads after the flags are parsed (--help stays fast)
        from kaleido_tf.model_zoo import registry  # noqa: PLC0415

        stage = Stages()
        model = registry.from_pretrained(os.path.join(out, "runs", "search"), task="retrieval")
        serve = export_for_page(
            out,
            os.path.join(out, "data"),
            model,
            stage,
            progress=not args.no_progress,
            classifier_steps=args.classifier_steps,
        )
        size = summary.get("serve", {}).get("size") or ("full" if args.classifier_steps >= 400 else "quick")
        summary["serve"] = {
            "size": size,
            "args": serve["args"],
            "catalog": serve["catalog"],
            "classifier_accuracy_on_images_alone": serve["image_accuracy"],
        }
        summary["seconds"] = {**summary.get("seconds", {}), **stage.seconds}
        if summary.get("search"):
            summary["search"]["export"] = serve["exports"]["retrieval"]
        atomic_write_text(summary_path, json.dumps(summary, indent=2) + "\n")
        print(f"{summary_path}: serve arguments {' '.join(serve['args'])}")
        return 0

    return cli_errors.guard("kaleido_tf.demo.serve_stage", run)(argv)


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
