"""Catalogs that make the scores meaningless: the same picture in two products, one category, a category
seen only in the test split. Retrieval never pairs a query with a byte-identical image as a negative;
the others are warned about in summary.json and the log."""

import json
import logging
import os
import shutil

import pytest

from kaleido_tf.preprocessors.cli import build_parser, config_from_args
from kaleido_tf.preprocessors.feature_extractor import build_feature_extractor
from kaleido_tf.preprocessors.pipeline import Preprocessor
from kaleido_tf.preprocessors.text_tokenizer import build_tokenizer
from tests.preprocessors.factory import make_catalog, small_args


@pytest.fixture(scope="module")
def parts():
    return build_tokenizer("wordpiece"), build_feature_extractor("pixels", crop_size=16, feature_size=8, seed=0)


def _run(parts, catalog, out, **overrides):
    config = config_from_args(build_parser().parse_args(small_args(catalog, out, **overrides)))
    tokenizer, extractor = parts
    return Preprocessor(config, feature_extractor=extractor, tokenizer=tokenizer).run()


def _read_bytes(root, rel):
    with open(os.path.join(root, rel), "rb") as f:
        return f.read()


def test_a_byte_identical_image_is_never_a_negative_of_its_copy(tmp_path, parts):
    root = str(tmp_path)
    # one subcategory, all in the test split; every product's image is a copy of product 0's under its own name
    catalog, products = make_catalog(root, num_products=8, splits=["test"], subcats=[("tops", "shirts")])
    for p in products[1:4]:
        shutil.copyfile(os.path.join(root, products[0]["images"][0]), os.path.join(root, p["images"][0]))
    out = os.path.join(root, "out")
    summary = _run(parts, catalog, out, task="retrieval", retrieval_split="test", retrieval_queries=8)
    copies = {p["product_id"] for p in products[:4]}
    for direction in ("txt2img", "img2txt"):
        with open(os.path.join(out, f"retrieval/{direction}/sets.part-00000-of-00001.jsonl")) as f:
            sets = [json.loads(line) for line in f]
        assert len(sets) == 8
        for s in sets:
            query = s["query_product_id"]
            own = _read_bytes(root, f"images/{query}_0.png")
            for c in s["candidates"]:
                other = c["image_prod_id"] if direction == "txt2img" else c["text_prod_id"]
                if c["label"] == 0:
                    assert _read_bytes(root, f"images/{other}_0.png") != own, (direction, query, other)
            if query in copies:
                assert s["num_negatives"] == 3  # 7 others, 3 of them copies: exactly the 4 different remain
        skipped = summary["retrieval"][direction]["candidates skipped"]["same image file as the query"]
        assert skipped > 0
        assert any(
            n.startswith(f"{direction}: {skipped} candidates were skipped") for n in summary["retrieval"]["notes"]
        )


def test_one_category_and_a_test_only_category_are_warned_about(tmp_path, parts, caplog):
    root = str(tmp_path)
    catalog, _ = make_catalog(root, num_products=6, splits=["train", "valid", "train"], subcats=[("tops", "shirts")])
    with caplog.at_level(logging.WARNING, logger="kaleido_tf.preprocessors.pipeline"):
        summary = _run(parts, catalog, os.path.join(root, "one"), task="finetune")
    assert summary["catalog_index"]["notes"] == [
        "the catalog has one category ('tops'): category prediction is trivial and retrieval negatives all come from it"
    ]
    assert [r.getMessage() for r in caplog.records] == ["warning: " + summary["catalog_index"]["notes"][0]]

    catalog, products = make_catalog(str(tmp_path / "two"), num_products=6, splits=["train", "valid", "test"])
    with open(catalog, "a", encoding="utf-8") as f:
        extra = dict(products[0], product_id="s1", category="socks", subcategory="ankle", split="test")
        f.write(json.dumps(extra) + "\n")
    summary = _run(parts, catalog, str(tmp_path / "two" / "out"), task="finetune")
    assert summary["catalog_index"]["notes"] == [
        "category 'socks' has only test products (1): training and validation never see it, so its test "
        "scores are meaningless"
    ]
    clean, _ = make_catalog(str(tmp_path / "clean"), num_products=10, splits=["train", "valid", "test", "train"])
    assert "notes" not in _run(parts, clean, str(tmp_path / "clean" / "out"), task="finetune")["catalog_index"]
