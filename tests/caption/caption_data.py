"""Tiny captioning data for the golden tiny model: finetune-schema bundles whose caption depends on the image.

The image features of example i carry its class (tests/apps/tiny_data.py writes the class into every patch
feature), and the caption is the class's caption, so the tiny model can learn to caption.
"""

import os

import numpy as np

from kaleido_tf.datasets import Schema
from kaleido_tf.datasets.synthetic import write_bundle
from tests.apps.tiny_data import _example, schema_string, tiny_config
from tests.conftest import GOLDEN
from tests.export.conftest import VOCAB, write_vocab

TINY = os.path.join(GOLDEN, "tiny")
TINY_CHECKPOINT = os.path.join(TINY, "model.ckpt-0")
TOKENS = {t: i for i, t in enumerate(VOCAB)}
SPECIAL_IDS = dict(pad_id=TOKENS["[PAD]"], cls_id=TOKENS["[CLS]"], sep_id=TOKENS["[SEP]"], mask_id=TOKENS["[MASK]"])
# Class -> caption, as WordPieces of the tiny vocab (decoded: "... long sleeves .").
CAPTIONS = ["a red dress", "a blue silk shirt", "black long skirt", "a white cotton dress , long sleeve ##s ."]
NUM_CAPTIONS = len(CAPTIONS)
TEXT_LENGTH = 16
LEVELS = (("rotation", 1), ("jigsaw", 4), ("camouflage", 9), ("grey_mask", 16), ("blank_mask", 25))


def caption_ids(text, length=TEXT_LENGTH):
    """[CLS] pieces [SEP] [PAD]... as (input_ids, input_mask) of `length`."""
    ids = [TOKENS["[CLS]"]] + [TOKENS[w] for w in text.split()] + [TOKENS["[SEP]"]]
    ids = ids[:length]
    input_ids = np.zeros(length, np.int64)
    input_ids[: len(ids)] = ids
    mask = np.zeros(length, np.int64)
    mask[: len(ids)] = 1
    return input_ids, mask


def caption_examples(num_examples, seed=0, num_classes=NUM_CAPTIONS):
    """Finetune-schema examples: class i % num_classes, its caption as the text; prod_img_id i<n>_0."""
    cfg = tiny_config()
    rng = np.random.default_rng(seed)
    examples = []
    for i in range(num_examples):
        label = i % num_classes
        ex = _example(rng, cfg, "finetune", label=label, product=i, text_product=i)
        ex["input_ids"], ex["input_mask"] = caption_ids(CAPTIONS[label])
        examples.append(ex)
    return examples


def write_caption_bundle(directory, num_examples, seed=0):
    """-> (list file, schema string, examples)."""
    schema = schema_string("finetune")
    examples = caption_examples(num_examples, seed=seed)
    list_file, _ = write_bundle(str(directory), Schema.parse(schema), len(examples), num_files=1, examples=examples)
    return list_file, schema, examples


def batch_features(examples):
    """Stacks examples into a dict of numpy arrays (the model's features; strings left out)."""
    keys = [k for k in examples[0] if examples[0][k].dtype != object]
    return {k: np.stack([ex[k] for ex in examples]) for k in keys}


def random_patches(batch_size, seed=0, feature_size=48):
    rng = np.random.default_rng(seed)
    out = {}
    for suffix, n in LEVELS:
        out[f"img_feature_convert_{suffix}"] = rng.normal(size=(batch_size, n * feature_size)).astype(np.float32)
        out[f"img_loc_position_{suffix}"] = rng.random((batch_size, n * 5)).astype(np.float32)
    return out


__all__ = [
    "CAPTIONS",
    "SPECIAL_IDS",
    "TINY",
    "TINY_CHECKPOINT",
    "VOCAB",
    "batch_features",
    "caption_examples",
    "caption_ids",
    "random_patches",
    "write_caption_bundle",
    "write_vocab",
]
