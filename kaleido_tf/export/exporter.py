"""export_saved_model: a kaleido_tf model -> EXPORT_DIR/<version>/, a SavedModel TF Serving loads.

The version directory is written under a temporary name beside it and renamed into place when complete, so
TF Serving (which polls EXPORT_DIR for integer-named directories) never sees a partial version, and a failed
export leaves nothing behind. Beside the SavedModel, `assets.extra/kaleido_export.json` describes the
signatures, the input widths, the class names and the tokeniser settings for clients.
"""

import dataclasses
import json
import logging
import os

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tqdm import tqdm

from kaleido_tf.export.caption_module import CAPTIONER, CaptionServingModule
from kaleido_tf.export.label_map import class_names as load_class_names
from kaleido_tf.export.retrieval_module import RETRIEVAL, RetrievalServingModule
from kaleido_tf.export.serving_module import CLASSIFIER, KaleidoServingModule, model_kind
from kaleido_tf.export.text_encoder import WordPieceEncoder
from kaleido_tf.model_zoo.kaleidobert_captioner import KaleidoBERTCaptioner
from kaleido_tf.model_zoo.kaleidobert_retrieval_model import KaleidoBERTRetrievalModel
from kaleido_tf.utils.disk_space import disk_full_error, is_disk_full
from kaleido_tf.utils.io import atomic_directory, atomic_write_text
from kaleido_tf.utils.vocab import model_vocab
from kaleido_tf.version import __version__

logger = logging.getLogger(__name__)

EXPORT_INFO = os.path.join("assets.extra", "kaleido_export.json")
EXPORT_FORMAT = "kaleido_tf-saved-model-v1"


class ExportError(ValueError):
    """An export that cannot be written as asked (an existing version, a bad version number)."""


# --------------------------------------------------------------------------- versions
def existing_versions(export_dir):
    """Integer-named version directories in `export_dir`, sorted (temporary and other entries ignored)."""
    if not os.path.isdir(export_dir):
        return []
    return sorted(
        int(name) for name in os.listdir(export_dir) if name.isdigit() and os.path.isdir(os.path.join(export_dir, name))
    )


def resolve_version(export_dir, version=None):
    """The version to write: `version` (an int >= 0 or its decimal string) or one after the largest existing."""
    if version is None:
        versions = existing_versions(export_dir)
        return versions[-1] + 1 if versions else 1
    if isinstance(version, bool):
        raise ExportError(f"version must be a non-negative integer, got {version!r}")
    if isinstance(version, str):
        if not version.strip().isdigit():
            raise ExportError(f"version must be a non-negative integer, got {version!r}")
        version = int(version)
    if not isinstance(version, int) or version < 0:
        raise ExportError(f"version must be a non-negative integer, got {version!r}")
    return version


# --------------------------------------------------------------------------- graph inspection
def custom_ops(saved_model_dir):
    """Op types of the SavedModel that core TensorFlow lacks (those a TF Serving binary must link in)."""

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    ops, functions = set(), set()
    for meta_graph in proto.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            functions.add(function.signature.name)
            ops.update(node.op for node in function.node_def)
    return sorted(op for op in ops - functions if not hasattr(tf.raw_ops, op))


# --------------------------------------------------------------------------- export
def _text_encoder(model, vocab_file, do_lower_case, text_length, text_signatures):
    if not text_signatures:
        return None
    vocab_size = model.config.vocab_size
    try:
        vocab_file = model_vocab(vocab_file, vocab_size, "the text signatures")
    except ValueError as e:
        logger.warning("%s: exporting without text signatures", e)
        return None
    return WordPieceEncoder(vocab_file, text_length, do_lower_case=do_lower_case, vocab_size=vocab_size)


def _write_export_info(directory, info):
    os.makedirs(os.path.join(directory, os.path.dirname(EXPORT_INFO)), exist_ok=True)
    atomic_write_text(os.path.join(directory, EXPORT_INFO), json.dumps(info, indent=2) + "\n")


def _add_raw_signatures(module, model, image_path, index_dir, top_k):
    """The raw signatures of `module` (None without image_path) -> {"settings", "index"} for the metadata."""
    # local imports: the image path and the index load only for exports that ask for them
    from kaleido_tf.export.image_inputs import ImagePathSettings  # noqa: PLC0415
    from kaleido_tf.export.raw_signatures import add_raw_signatures  # noqa: PLC0415

    if image_path is None:
        if index_dir is not None:
            raise ValueError("index_dir needs image_path (the preprocessing settings of the catalog's images)")
        return None
    if isinstance(image_path, ImagePathSettings):
        settings = image_path.checked()
    elif isinstance(image_path, dict):
        settings = ImagePathSettings(**image_path).checked()
    else:
        settings = ImagePathSettings.from_preprocess_dir(image_path)
    index, index_info = None, None
    if index_dir is not None:
        from kaleido_tf.index import SearchIndex, model_fingerprint  # noqa: PLC0415

        index = SearchIndex.load(os.fspath(index_dir))
        index.check_model(model_fingerprint(model), where="the exported model")
        index_info = {
            "products": index.num_products,
            "images": index.num_images,
            "fingerprint": index.fingerprint,
            "top_k": min(int(top_k), index.num_products),
        }
    add_raw_signatures(module, settings, index=index, top_k=top_k)
    return {"settings": settings, "index": index_info}


def export_saved_model(
    model,
    export_dir,
    version=None,
    vocab_file=None,
    label_map=None,
    do_lower_case=True,
    max_text_length=None,
    overwrite=False,
    text_signatures=True,
    beam_size=None,
    max_caption_length=None,
    image_path=None,
    index_dir=None,
    top_k=10,
):
    """Exports `model` as the SavedModel EXPORT_DIR/<version>/ for TF Serving; returns that path.

    Args:
        model: a built KaleidoBERTPretrainModel (signatures itm_score, embed), KaleidoBERTClassifier
            (classify, embed) or KaleidoBERTCaptioner (caption), weights loaded (`kaleido_tf.from_pretrained`).
        export_dir: the model's base directory (TF Serving's model_base_path).
        version: integer version; default one after the largest existing version (1 for none).
        vocab_file: WordPiece vocab for the raw-text signatures (`*_text`, `tokenize`); default: the packaged
            BERT uncased vocab when it fits the model's word table (else no text signatures, with a warning).
        label_map: classifier class names: {name: id} or a JSON file of it; unnamed ids are "class_<id>".
        do_lower_case: lower-case and strip accents before WordPiece (BERT uncased).
        max_text_length: T of every signature; default the config's text_seq_len.
        overwrite: replace an existing version (otherwise an existing version is an ExportError).
        text_signatures: False leaves out the raw-text signatures, and with them the tensorflow-text ops, for
            a TF Serving binary without those ops.
        beam_size, max_caption_length: generation settings of a captioner's `caption` signature (default:
            the model's); the captioner's vocab_file decodes the captions (default: the packaged vocab, when
            it fits).
        image_path: adds the raw-input signatures (export/raw_signatures.py: image bytes and text in) with the
            in-graph image path of these preprocessing settings: an `ImagePathSettings`, a dict of its
            fields, or a preprocessing output directory (its summary.json); None: feature signatures only.
        index_dir: a retrieval model's catalog index (kaleido-index build): adds search_text / search_image
            over its vectors, stored in the SavedModel (needs image_path).
        top_k: results of the search signatures and ranked classes of classify_image / classify_raw.
    """
    captioner = isinstance(model, KaleidoBERTCaptioner)
    retrieval = isinstance(model, KaleidoBERTRetrievalModel)
    kind = CAPTIONER if captioner else RETRIEVAL if retrieval else model_kind(model)
    if label_map is not None and kind != CLASSIFIER:
        raise ValueError("label_map applies to classifier models (task catepred/subcatepred) only")
    export_dir = os.path.abspath(os.fspath(export_dir))
    number = resolve_version(export_dir, version)
    path = os.path.join(export_dir, str(number))
    if os.path.exists(path) and not overwrite:
        raise ExportError(f"version {number} already exists at {path}: choose another version or pass overwrite=True")

    text_length = int(max_text_length) if max_text_length is not None else model.config.text_seq_len
    names = load_class_names(label_map, model.num_classes) if kind == CLASSIFIER else None
    if captioner:
        encoder = None
        module = CaptionServingModule(
            model,
            model_vocab(vocab_file, model.config.vocab_size, "a captioner export"),
            max_length=max_caption_length,
            beam_size=beam_size,
        )
    elif retrieval:
        encoder = _text_encoder(model, vocab_file, do_lower_case, text_length, text_signatures)
        module = RetrievalServingModule(model, text_encoder=encoder, text_length=text_length)
    else:
        encoder = _text_encoder(model, vocab_file, do_lower_case, text_length, text_signatures)
        module = KaleidoServingModule(model, text_encoder=encoder, class_names=names, text_length=text_length)

    raw = _add_raw_signatures(module, model, image_path, index_dir, top_k)

    existed = os.path.exists(path)
    try:
        _save_version(module, model, path, number, overwrite, text_length, names, encoder, captioner, raw)
    except Exception as e:
        if not is_disk_full(e):
            raise
        kept = f"the previous version {number} there is unchanged" if existed else "no partial version was left"
        raise disk_full_error(
            path, e, kept, "free space or use another --export_dir", f"export version {number}"
        ) from e
    logger.info("exported %s", path)
    return path


def _save_version(module, model, path, number, overwrite, text_length, names, encoder, captioner, raw):
    """Traces, saves and describes the SavedModel in a temporary directory, then renames it to `path`."""
    steps = tqdm(total=len(module.signature_names) + 2, desc=f"export version {number}", unit="step", leave=False)
    with steps, atomic_directory(path, overwrite=overwrite) as tmp:
        for name in module.signature_names:
            steps.set_postfix_str(f"trace {name}")
            module.concrete_function(name)
            steps.update()
        steps.set_postfix_str("save")
        tf.saved_model.save(module, tmp, signatures=module.signatures())
        steps.update()
        info = {
            "format": EXPORT_FORMAT,
            "kaleido_tf_version": __version__,
            "model": type(model).__name__,
            "task": getattr(model, "task", "pretrain"),
            "version": number,
            "text_length": text_length,
            "default_signature": module.default_signature,
            "signatures": module.describe(),
            "class_names": names,
            "text": None
            if encoder is None
            else {
                "vocab_asset": encoder.vocab_file_name,
                "vocab_tokens": encoder.vocab_tokens,
                "do_lower_case": encoder.do_lower_case,
                "format": "[CLS] text [SEP], truncated and padded with [PAD] to text_length",
            },
            "caption": None
            if not captioner
            else {
                "vocab_asset": module.decoder.vocab_file_name,
                "vocab_tokens": module.decoder.vocab_tokens,
                "special_ids": dataclasses.asdict(model.tokens),
                "max_length": module.max_length,
                "beam_size": module.beam_size,
                "length_penalty": module.length_penalty,
                "no_repeat_ngram_size": module.no_repeat_ngram_size,
            },
            "image_path": None if raw is None else raw["settings"].to_dict(),
            "index": None if raw is None else raw["index"],
            "custom_ops": custom_ops(tmp),
            "config": model.config.to_dict(),
        }
        _write_export_info(tmp, info)
        steps.update()
