"""The demo's last stage: what the catalog search page (`kaleido-serve`, `make search-demo`) needs.

It runs after every metric stage and draws no random numbers of theirs: it only loads the trained runs and
writes, under the demo's output folder,

    catalog_index/         the whole catalog (every split) embedded by the search model: the shop's gallery
    export/retrieval/1     the search model with raw-input signatures (embed_image_raw from image bytes) and
                           search_text / search_image over catalog_index
    export/category/1      the category classifier finetuned from the pretrained model, classify_image from bytes
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


def export_for_page(out, data, search_model, stage, progress=False, caption=True):
    """Builds the catalog index and the page's exports (module docstring) from the demo's runs in `out`;
    returns {"args": kaleido-serve arguments, "catalog": catalog file, "exports": {name: path}, "index": dir}."""
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
                os.path.join(out, "runs", f"{task}_pretrained"), task=task, num_classes=len(read_label_map(label_map))
            )
            exports[name] = export_saved_model(
                model,
                os.path.join(out, "export", name),
                vocab_file=vocab,
                label_map=label_map,
                text_signatures=False,  # the page sends classifiers image bytes only; fewer graphs to trace
                image_path=image_path,
                version=1,
                overwrite=True,
            )
        if caption:
            exports["caption"] = _export_captioner(out, vocab, image_path)
        for name, path in exports.items():
            print(f"SavedModel ({name}): {path}")
    args = serve_arguments(out)
    return {"args": args, "catalog": args[-1], "exports": exports, "index": index_dir}


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
