"""Shared helpers of the export tests: a tiny WordPiece vocab, golden inputs, subprocess runs."""

import json
import os
import subprocess
import sys

import numpy as np

from tests.conftest import GOLDEN

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
