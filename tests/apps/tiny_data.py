"""Small, valid data in the original TSV format for a tiny model (the golden fixture's sizes)."""

import json
import os

import numpy as np

from kaleido_tf.datasets import Schema
from kaleido_tf.datasets.synthetic import write_bundle
from tests.conftest import GOLDEN

CONFIG_PATH = os.path.join(GOLDEN, "tiny", "config.json")
LEVELS = (("rotation", 1), ("jigsaw", 4), ("camouflage", 9), ("grey_mask", 16), ("blank_mask", 25))


def tiny_config():
    return json.load(open(CONFIG_PATH))


def schema_string(kind, cfg=None):
    cfg = cfg or tiny_config()
    T, F = cfg["text_seq_len"], cfg["patch_feature_size"]
    text = [f"input_ids:int:{T}", f"input_mask:int:{T}", f"segment_ids:int:{T}"]
    image = [f"img_feature_convert_{lvl}:float:{n * F}" for lvl, n in LEVELS] + ["image_mask:int:55"]
    image += [f"img_loc_position_{lvl}:int:{n * 5}" for lvl, n in LEVELS]
    if kind == "pretrain":
        fields = (
            text
            + ["masked_lm_positions:int:4", "masked_lm_ids:int:4", "masked_lm_weights:float:4"]
            + image
            + [
                "img_subtasks_flag:int:1",
                "img_grey_lm_ids:int:2",
                "img_blank_lm_ids:int:3",
                "img_rotate_gt:int:1",
                "img_jigsaw_gt:int:1",
                "img_camouflage_gt:int:1",
                f"img_grey_mask_gt:float:{2 * F}",
                "nx_sent_labels:int:1",
            ]
        )
    elif kind == "finetune":
        fields = (
            ["text_prod_id:str:1"]
            + text
            + ["prod_desc:str:1", "image_prod_id:str:1", "prod_img_id:str:1"]
            + image
            + ["img_category:str:1", "img_category_id:int:1", "img_subcategory:str:1", "img_subcategory_id:int:1"]
        )
    else:
        fields = (
            ["text_prod_id:str:1"]
            + text
            + ["prod_desc:str:1", "nx_sent_labels:int:1", "image_prod_id:str:1", "prod_img_id:str:1"]
            + image
        )
    return ",".join(fields)


def _example(rng, cfg, kind, label=0, product=0, text_product=0, positive=1):
    T, F = cfg["text_seq_len"], cfg["patch_feature_size"]
    # The class / match signal is written into the features, so the tiny model can learn it.
    ex = {
        "input_ids": rng.integers(5, cfg["vocab_size"], T),
        "input_mask": np.ones(T, np.int64),
        "segment_ids": np.zeros(T, np.int64),
        "image_mask": np.ones(55, np.int64),
    }
    ex["input_ids"][0] = 1
    ex["input_ids"][1] = 10 + (text_product % 50)
    for lvl, n in LEVELS:
        feat = rng.random(n * F).astype(np.float32) * 0.1
        feat[(product * 7) % F :: F] += 1.0
        feat[label % F] += 2.0
        ex[f"img_feature_convert_{lvl}"] = feat
        ex[f"img_loc_position_{lvl}"] = rng.integers(0, 4, n * 5)
    if kind == "pretrain":
        ex.update(
            masked_lm_positions=rng.integers(1, T, 4),
            masked_lm_ids=rng.integers(0, cfg["vocab_size"], 4),
            masked_lm_weights=np.array([1, 1, 1, 0], np.float32),
            img_subtasks_flag=np.array([1]),
            img_grey_lm_ids=rng.choice(16, 2, replace=False),
            img_blank_lm_ids=rng.choice(25, 3, replace=False),
            img_rotate_gt=np.array([label % 4]),
            img_jigsaw_gt=np.array([label % 24]),
            img_camouflage_gt=np.array([label % 9]),
            img_grey_mask_gt=rng.random(2 * F).astype(np.float32),
            nx_sent_labels=np.array([positive]),
        )
    ids = {
        "text_prod_id": f"t{text_product}",
        "image_prod_id": f"i{product}",
        "prod_img_id": f"i{product}_0",
        "prod_desc": f"product {text_product}",
    }
    if kind == "finetune":
        ex.update({k: np.array([v.encode()], dtype=object) for k, v in ids.items()})
        ex.update(
            img_category=np.array([f"cat{label}".encode()], dtype=object),
            img_category_id=np.array([label]),
            img_subcategory=np.array([f"sub{label}".encode()], dtype=object),
            img_subcategory_id=np.array([label]),
        )
    elif kind == "retrieval":
        ex.update({k: np.array([v.encode()], dtype=object) for k, v in ids.items()})
        ex["nx_sent_labels"] = np.array([positive])
    return ex


def write_tiny_bundle(
    directory, kind, num_examples=24, num_files=2, seed=0, num_classes=4, candidates=5, direction="txt2img"
):
    """Writes a bundle; returns (list file, schema string, examples). Retrieval bundles hold queries of
    `candidates` pairs (1 positive first): one text against images (txt2img) or one image against texts."""
    cfg = tiny_config()
    rng = np.random.default_rng(seed)
    examples = []
    if kind == "retrieval":
        for query in range(num_examples // candidates):
            for c in range(candidates):
                other = query if c == 0 else 100 + query * candidates + c
                product, text = (other, query) if direction == "txt2img" else (query, other)
                examples.append(_example(rng, cfg, kind, product=product, text_product=text, positive=int(c == 0)))
    else:
        for i in range(num_examples):
            examples.append(_example(rng, cfg, kind, label=i % num_classes, product=i, text_product=i, positive=i % 2))
    schema = schema_string(kind, cfg)
    list_file, _ = write_bundle(
        str(directory), Schema.parse(schema), len(examples), num_files=num_files, examples=examples
    )
    return list_file, schema, examples
