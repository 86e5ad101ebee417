"""Shared helpers of the export tests: a tiny WordPiece vocab, golden inputs, subprocess runs, and the builds
several test modules read (a preprocessed tiny catalog, its raw-signature exports), each made once per run."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import GOLDEN
from tests.session_once import once_per_session

TINY = os.path.join(GOLDEN, "tiny")
TINY_CHECKPOINT = os.path.join(TINY, "model.ckpt-0")

# A vocab for the tiny model (vocab_size 120): ids are the line numbers.
VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",  # 0-4
    "a",
    "red",
    "blue",
    "black",
    "white",  # 5-9
    "dress",
    "shirt",
    "skirt",
    "cotton",
    "silk",  # 10-14
    "long",
    "sleeve",
    "##s",
    "##es",
    "##less",  # 15-19
    "women",
    ",",
    ".",
    "-",  # 20-23
]
TEXT_LENGTH = 16  # text_seq_len of golden/tiny

# Raw strings and their BERT-uncased WordPiece encoding under VOCAB, worked out by hand:
# lower-casing and accent stripping, punctuation split, greedy longest-match pieces, [UNK] for the rest.
TEXTS = [
    "Red cotton dresses, sleeveless.",
    "BLUE Silk Shirts \u2013 Caf\u00e9",  # an en dash (punctuation, not in the vocab) and an accented word
    " ".join(["women"] * 20),  # truncated to 14 pieces
    "",
]
EXPECTED_IDS = [
    [2, 6, 13, 10, 18, 21, 16, 19, 22, 3],
    [2, 7, 14, 11, 17, 1, 1, 3],
    [2] + [20] * 14 + [3],
    [2, 3],
]


def write_vocab(path):
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(VOCAB) + "\n")
    return path


def expected_text_inputs():
    """input_ids, input_mask, segment_ids [4, T] of TEXTS, padded with [PAD] = 0."""
    ids = np.zeros((len(EXPECTED_IDS), TEXT_LENGTH), np.int64)
    mask = np.zeros_like(ids)
    for row, tokens in enumerate(EXPECTED_IDS):
        ids[row, : len(tokens)] = tokens
        mask[row, : len(tokens)] = 1
    return {"input_ids": ids, "input_mask": mask, "segment_ids": np.zeros_like(ids)}


def load_golden():
    data = np.load(os.path.join(TINY, "golden.npz"))
    return {k: data[k] for k in data.files}


def golden_features(golden):
    return {k[len("input/") :]: v for k, v in golden.items() if k.startswith("input/")}


def signature_inputs(signature, features):
    """The arrays a signature takes, cast to its input dtypes."""
    specs = signature.structured_input_signature[1]
    return {name: np.asarray(features[name]).astype(spec.dtype.as_numpy_dtype) for name, spec in specs.items()}


def export_info(version_dir):
    with open(os.path.join(version_dir, "assets.extra", "kaleido_export.json"), encoding="utf-8") as f:
        return json.load(f)


def run_subprocess(args, cwd, timeout=240):
    """Runs a command with a quiet TensorFlow; returns the CompletedProcess (fails the test on error)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("PYTHONPATH", None)
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr[-4000:]}"
    return result


def saved_model_cli():
    """The saved_model_cli of the running environment."""
    path = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    assert os.path.isfile(path), f"saved_model_cli not found beside {sys.executable}"
    return path


# --------------------------------------------------------------------------- builds shared by several modules
@pytest.fixture(scope="session")
def tiny_catalog(tmp_path_factory):
    """A tiny catalog (6 products, one 64 x 64 image each, split train) preprocessed with the pixels extractor:
    {"root", "catalog" (catalog.jsonl), "dir" (the preprocessing output), "vocab"}. Read only."""
    from kaleido_tf.preprocessors.cli import build_parser, config_from_args
    from kaleido_tf.preprocessors.pipeline import Preprocessor
    from tests.preprocessors.factory import make_catalog, small_args

    def build(root):
        vocab = write_vocab(str(root / "vocab.txt"))
        catalog, _ = make_catalog(str(root), num_products=6, images_per_product=1, splits=["train"])
        args = small_args(catalog, str(root / "prep"), task="finetune", patch_feature_size=48, vocab=vocab)
        Preprocessor(config_from_args(build_parser().parse_args(args))).run()

    root = once_per_session(tmp_path_factory, "tiny_catalog", build)
    return {
        "root": root,
        "catalog": str(root / "catalog.jsonl"),
        "dir": str(root / "prep"),
        "vocab": str(root / "vocab.txt"),
    }


def _raw_model(name, vocab):
    """The tiny model of each raw-signature export."""
    import kaleido_tf
    from kaleido_tf.model_zoo.caption_decoding import CaptionTokens

    if name == "classifier":
        return kaleido_tf.from_pretrained(TINY_CHECKPOINT, task="catepred")
    if name == "retrieval":
        return kaleido_tf.from_pretrained(
            TINY_CHECKPOINT, task="retrieval", itc_embedding_size=8, image_prefix_ids=(2, 3)
        )
    if name == "caption":
        tokens = CaptionTokens.from_vocab_file(vocab)
        return kaleido_tf.from_pretrained(TINY_CHECKPOINT, task="caption", **dataclasses.asdict(tokens))
    assert name == "pretrain", name
    return kaleido_tf.from_pretrained(TINY_CHECKPOINT)


@pytest.fixture(scope="session")
def raw_export(tmp_path_factory, tiny_catalog):
    """raw_export(name) -> {"model", "path", "loaded", "index" (retrieval)}: the tiny `name` model ("classifier",
    "retrieval", "caption", "pretrain") exported with the raw signatures of tiny_catalog's preprocessing (top_k 3;
    retrieval with a search index of the catalog). Exported once per run; the Keras model (its weights as
    exported: freshly initialised heads included) and the loaded SavedModel once per worker. Read only."""
    import tensorflow as tf

    from kaleido_tf.export.exporter import export_saved_model
    from kaleido_tf.index import SearchIndex, build_index

    cache = {}

    def get(name):
        if name in cache:
            return cache[name]
        built = {}

        def build(root):
            model = built["model"] = _raw_model(name, tiny_catalog["vocab"])
            kwargs = {}
            if name == "retrieval":
                build_index(model, tiny_catalog["dir"], str(root / "index"), splits=("train",), progress=False)
                kwargs["index_dir"] = str(root / "index")
            export_saved_model(
                model,
                root / "export",
                vocab_file=tiny_catalog["vocab"],
                image_path=tiny_catalog["dir"],
                top_k=3,
                **kwargs,
            )
            model.save_weights(str(root / "model.weights.h5"))

        root = once_per_session(tmp_path_factory, f"raw_{name}", build)
        model = built.get("model")
        if model is None:  # exported by another worker: the same weights
            model = _raw_model(name, tiny_catalog["vocab"])
            model.load_weights(str(root / "model.weights.h5"))
        path = str(root / "export" / "1")
        cache[name] = {"model": model, "path": path, "loaded": tf.saved_model.load(path)}
        if name == "retrieval":
            cache[name]["index"] = SearchIndex.load(str(root / "index"))
        return cache[name]

    return get


@pytest.fixture(scope="session")
def pretrain_export(tmp_path_factory):
    """golden/tiny converted by kaleido-convert and exported with the text signatures, as the demo does:
    {"converted" (the converted model directory), "export_dir", "path" (version 1, as export_saved_model
    returned it)}. The vocab file was removed after the export (the export carries its own copy). Made once
    per run; read only: copy the version directory to build on it."""
    import kaleido_tf
    from kaleido_tf.export.exporter import export_saved_model
    from kaleido_tf.model_zoo.tf1_conversion import convert_tf1_checkpoint

    def build(root):
        convert_tf1_checkpoint(TINY_CHECKPOINT, str(root / "converted"))
        model = kaleido_tf.from_pretrained(str(root / "converted"))
        vocab = write_vocab(root / "vocab.txt")
        path = export_saved_model(model, root / "serving", vocab_file=vocab)
        os.remove(vocab)
        (root / "returned_path.txt").write_text(str(path))

    root = once_per_session(tmp_path_factory, "pretrain_export", build)
    return {
        "converted": str(root / "converted"),
        "export_dir": str(root / "serving"),
        "path": (root / "returned_path.txt").read_text(),
    }
