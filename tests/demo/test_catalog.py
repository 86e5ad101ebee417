"""Tests of the synthetic demo catalog (kaleido_tf.demo)."""

import json
import os
import re
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from kaleido_tf.demo import CATEGORIES, COLOURS, PATTERNS, SUBCATEGORIES, TAXONOMY, generate_catalog, make_product
from kaleido_tf.demo.catalog import main, plan_catalog
from kaleido_tf.demo.painter import Painter
from kaleido_tf.demo.taxonomy import SUBCATEGORY_BY_NAME

N_PRODUCTS = 30
SIZE = 48
VIEWS = 2
GARMENT_CATEGORIES = ("tops", "dresses", "skirts", "trousers", "outerwear")


def _read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _words(text):
    return set(re.findall(r"[a-z]+(?:['-][a-z]+)*", text))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    out = tmp_path_factory.mktemp("catalog") / "seed0"
    summary = generate_catalog(out, N_PRODUCTS, views_per_product=VIEWS, image_size=SIZE, seed=0)
    return {
        "dir": out,
        "summary": summary,
        "products": _read_jsonl(out / "catalog.jsonl"),
        "alignments": _read_jsonl(out / "alignments.jsonl"),
    }


def test_taxonomy_is_rich_enough():
    assert len(CATEGORIES) >= 8
    assert len(SUBCATEGORIES) >= 20
    per_category = Counter(s.category for s in TAXONOMY)
    assert all(n >= 2 for n in per_category.values()), per_category
    assert len(COLOURS) >= 12 and len(set(COLOURS.values())) == len(COLOURS)
    assert set(PATTERNS) == {"solid", "striped", "polka dot", "checked", "floral"}
    for sub in TAXONOMY:
        assert all(sub.name in noun for noun in sub.nouns)


def test_taxonomy_json_and_summary(catalog):
    with open(catalog["dir"] / "taxonomy.json", encoding="utf-8") as f:
        taxonomy = json.load(f)
    assert taxonomy["categories"] == list(CATEGORIES)
    assert [s["name"] for s in taxonomy["subcategories"]] == list(SUBCATEGORIES)
    for entry in taxonomy["subcategories"]:
        assert taxonomy["categories"][entry["category_id"]] == SUBCATEGORY_BY_NAME[entry["name"]].category
    summary = catalog["summary"]
    assert summary["num_products"] == N_PRODUCTS and summary["num_images"] == N_PRODUCTS * VIEWS
    assert sum(summary["splits"].values()) == N_PRODUCTS
    assert summary["categories"] == dict(Counter(p["category"] for p in catalog["products"]))


def test_same_seed_gives_identical_bytes_and_other_seed_differs(catalog, tmp_path):
    again = tmp_path / "again"
    other = tmp_path / "other"
    generate_catalog(again, N_PRODUCTS, views_per_product=VIEWS, image_size=SIZE, seed=0)
    generate_catalog(other, N_PRODUCTS, views_per_product=VIEWS, image_size=SIZE, seed=1)
    first = catalog["dir"]
    for name in ("catalog.jsonl", "alignments.jsonl", "taxonomy.json"):
        assert (first / name).read_bytes() == (again / name).read_bytes(), name
    assert sorted(os.listdir(first / "images")) == sorted(os.listdir(again / "images"))
    for name in os.listdir(first / "images"):
        assert (first / "images" / name).read_bytes() == (again / "images" / name).read_bytes(), name
    assert (first / "catalog.jsonl").read_bytes() != (other / "catalog.jsonl").read_bytes()

    def pixels(directory, name):
        return np.asarray(Image.open(directory / "images" / name))

    names = os.listdir(first / "images")
    differing = sum(not np.array_equal(pixels(first, name), pixels(other, name)) for name in names)
    assert differing == N_PRODUCTS * VIEWS


def test_records_images_and_sizes(catalog):
    products = catalog["products"]
    assert len(products) == N_PRODUCTS
    assert [p["product_id"] for p in products] == [f"p{i:06d}" for i in range(N_PRODUCTS)]
    for p in products:
        assert set(p) == {"product_id", "images", "text", "category", "subcategory", "split", "attributes"}
        assert p["images"] == [f"images/{p['product_id']}_{v}.png" for v in range(VIEWS)]
        assert SUBCATEGORY_BY_NAME[p["subcategory"]].category == p["category"]
        for rel in p["images"]:
            with Image.open(catalog["dir"] / rel) as im:
                assert im.size == (SIZE, SIZE) and im.mode == "RGB"
    assert len(os.listdir(catalog["dir"] / "images")) == N_PRODUCTS * VIEWS
    # 30 products cycle through a permutation of the 24 subcategories: all of them appear.
    assert {p["subcategory"] for p in products} == set(SUBCATEGORIES)


def test_captions_name_colour_pattern_colour_subcategory_and_details(catalog):
    for p in catalog["products"]:
        text, a = p["text"], p["attributes"]
        assert text == text.lower() and "  " not in text
        assert a["colour"] in text and p["subcategory"] in text
        assert a["pattern"] in PATTERNS and a["colour"] in COLOURS
        if a["pattern"] != "solid":
            assert a["pattern_colour"] in text and a["pattern_colour"] != a["colour"]
        if "length" in a:
            assert a["length"] in text
        sub = SUBCATEGORY_BY_NAME[p["subcategory"]]
        phrases = {d.name: d.phrases for d in sub.details}
        for detail in a["details"]:
            assert any(phrase in text for phrase in phrases[detail]), (detail, text)


def test_splits_cover_every_product_once(catalog):
    products = catalog["products"]
    ids = [p["product_id"] for p in products]
    assert len(set(ids)) == len(ids)
    splits = Counter(p["split"] for p in products)
    assert set(splits) == {"train", "valid", "test"}
    assert sum(splits.values()) == N_PRODUCTS
    # A larger plan: balanced subcategories, fractions close to the request, stratified by subcategory.
    plan = plan_catalog(960, seed=7, valid_fraction=0.1, test_fraction=0.2)
    per_sub = Counter(sub for sub, _ in plan)
    assert max(per_sub.values()) - min(per_sub.values()) <= 1
    counts = Counter(split for _, split in plan)
    assert abs(counts["test"] - 192) <= 4 and abs(counts["valid"] - 96) <= 4
    for sub in SUBCATEGORIES:
        n_test = sum(1 for s, split in plan if s == sub and split == "test")
        assert 6 <= n_test <= 10, (sub, n_test)
    assert plan_catalog(960, seed=7, valid_fraction=0.1, test_fraction=0.2) == plan
    assert plan_catalog(960, seed=8, valid_fraction=0.1, test_fraction=0.2) != plan


def test_solid_products_show_their_named_colour():
    """The median colour of the product's pixels inside its box is the named colour."""
    names = list(COLOURS)
    palette = np.array([COLOURS[n] for n in names], np.float32)
    checked = 0
    for sub in (s.name for s in TAXONOMY if s.category in GARMENT_CATEGORIES):
        for index in range(60):
            record, images, alignments = make_product(11, index, sub, image_size=SIZE, views_per_product=2)
            if record["attributes"]["pattern"] != "solid":
                continue
            colour = record["attributes"]["colour"]
            word = colour.split()[0]
            for pixels, entries in zip(images, alignments):
                box = next(e["box"] for e in entries if e["word"] == word)
                x1, y1, x2, y2 = (int(round(c * SIZE)) for c in box)
                inside = pixels[y1:y2, x1:x2].reshape(-1, 3).astype(np.float32)  # [P, 3]
                border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]]).astype(np.float32)
                references = np.concatenate([palette, np.median(border, axis=0)[None]])  # [13 + 1, 3]
                nearest = np.argmin(np.linalg.norm(inside[:, None] - references[None], axis=-1), axis=1)
                product_pixels = inside[nearest < len(palette)]  # drop the backdrop around the silhouette
                assert len(product_pixels) > 0.3 * len(inside)
                median = np.median(product_pixels, axis=0)
                assert np.linalg.norm(median - np.array(COLOURS[colour])) < 30, (sub, colour, median)
                assert names[int(np.argmin(np.linalg.norm(palette - median, axis=1)))] == colour
            checked += 1
            break
    assert checked == len([s for s in TAXONOMY if s.category in GARMENT_CATEGORIES])


def test_alignment_boxes_are_valid_and_match_the_drawing(catalog):
    lines = catalog["alignments"]
    assert len(lines) == N_PRODUCTS * VIEWS
    by_id = {p["product_id"]: p for p in catalog["products"]}
    for line in lines:
        product = by_id[line["product_id"]]
        assert 0 <= line["image_index"] < VIEWS
        caption_words = _words(product["text"])
        entries = line["alignments"]
        words = {e["word"] for e in entries}
        assert words <= caption_words
        for w in product["attributes"]["colour"].split() + product["subcategory"].split():
            assert w in words, (w, product["text"])
        garment = next(e["box"] for e in entries if e["word"] == product["attributes"]["colour"].split()[0])
        for e in entries:
            x1, y1, x2, y2 = e["box"]
            assert 0.0 <= x1 < x2 <= 1.0 and 0.0 <= y1 < y2 <= 1.0, e
            # every part lies inside the whole product's box
            assert x1 >= garment[0] - 1e-6 and y1 >= garment[1] - 1e-6
            assert x2 <= garment[2] + 1e-6 and y2 <= garment[3] + 1e-6
        sub = SUBCATEGORY_BY_NAME[product["subcategory"]]
        for detail in product["attributes"]["details"]:
            phrase_words = {w for d in sub.details if d.name == detail for ph in d.phrases for w in _words(ph)}
            assert any(e["word"] in phrase_words and e["box"] != garment for e in entries), (detail, product["text"])
        # The product box is where the non-background pixels are (checks scale, shift and flip).
        pixels = np.asarray(Image.open(catalog["dir"] / product["images"][line["image_index"]]), np.float32)
        border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
        foreground = np.abs(pixels - np.median(border, axis=0)).max(axis=-1) > 24  # [S, S]
        ys, xs = np.nonzero(foreground)
        seen = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32) / SIZE
        assert np.abs(seen - np.array(garment)).max() <= 2.5 / SIZE, (product["text"], seen, garment)


def test_flip_scale_and_shift_move_pixels_and_boxes_together():
    """Drawing the same t-shirt mirrored mirrors both the picture and the recorded pocket box."""
    sub = SUBCATEGORY_BY_NAME["t-shirt"]
    attributes = {"sleeve": "short", "length": None, "details": {"pocket"}}
    views = {}
    for flip in (False, True):
        painter = Painter(64, 1.0, 0.0, 0.0, flip, (230, 230, 230), COLOURS["red"], "solid", np.random.default_rng(0))
        sub.draw(painter, attributes)
        views[flip] = (np.asarray(painter.image), painter.view_box(painter.boxes["pocket"][0]))
    plain, mirrored = views[False], views[True]
    assert plain[1][2] < 0.5  # the pocket is on the left of the canonical drawing
    np.testing.assert_allclose(mirrored[1], [1 - plain[1][2], plain[1][1], 1 - plain[1][0], plain[1][3]], atol=1e-9)
    assert np.mean(np.abs(plain[0][:, ::-1].astype(int) - mirrored[0].astype(int)) > 40) < 0.01
    # half size, moved right by a quarter: the box follows exactly
    painter = Painter(64, 0.5, 0.25, 0.0, False, (230, 230, 230), COLOURS["red"], "solid", np.random.default_rng(0))
    sub.draw(painter, attributes)
    moved = painter.view_box(painter.boxes["pocket"][0])
    expected = [0.5 + (c - 0.5) * 0.5 + (0.25 if i % 2 == 0 else 0.0) for i, c in enumerate(plain[1])]
    np.testing.assert_allclose(moved, expected, atol=1e-9)


def test_category_is_learnable_from_crude_image_features():
    """Nearest class centroid on 8x8 foreground masks of centred 32-pixel views beats chance by far."""
    plan = plan_catalog(240, seed=3)
    features, labels = [], []
    for index, (sub, _) in enumerate(plan):
        _, images, _ = make_product(3, index, sub, image_size=32, views_per_product=1)
        im = images[0].astype(np.float32)
        border = np.concatenate([im[0], im[-1], im[:, 0], im[:, -1]])
        mask = (np.abs(im - np.median(border, axis=0)).max(axis=-1) > 25).astype(np.float32)  # [32, 32]
        features.append(mask.reshape(8, 4, 8, 4).mean(axis=(1, 3)).ravel())  # [64]
        labels.append(SUBCATEGORIES.index(sub))
    features, labels = np.array(features), np.array(labels)
    held_out = np.arange(len(plan)) % 4 == 0
    centroids = np.stack([features[~held_out & (labels == c)].mean(0) for c in range(len(SUBCATEGORIES))])
    dist = ((features[held_out][:, None, :] - centroids[None]) ** 2).sum(-1)  # [N, subcategories]
    predicted = np.argmin(dist, axis=1)
    category = [SUBCATEGORY_BY_NAME[s].category for s in SUBCATEGORIES]
    accuracy = np.mean([category[p] == category[t] for p, t in zip(predicted, labels[held_out])])
    assert accuracy >= 0.75, accuracy  # chance is 1/8


def test_bad_arguments_and_existing_directories(tmp_path):
    with pytest.raises(ValueError, match="num_products"):
        generate_catalog(tmp_path / "a", 0)
    with pytest.raises(ValueError, match="image_size"):
        generate_catalog(tmp_path / "a", 2, image_size=16)
    with pytest.raises(ValueError, match="seed"):
        generate_catalog(tmp_path / "a", 2, seed=-1)
    with pytest.raises(ValueError, match="valid_fraction"):
        generate_catalog(tmp_path / "a", 2, valid_fraction=0.5, test_fraction=0.5)
    assert not (tmp_path / "a").exists()
    other = tmp_path / "not_a_catalog"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        generate_catalog(other, 2, image_size=32)
    with pytest.raises(ValueError, match="not a previous catalog"):
        generate_catalog(other, 2, image_size=32, overwrite=True)
    assert (other / "keep.txt").read_text() == "x"


def test_command_line_writes_and_overwrites(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["--output_dir", str(out), "--num_products", "3", "--views", "1", "--image_size", "32", "--seed", "4"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["num_images"] == 3 and summary["seed"] == 4
    assert len(_read_jsonl(out / "catalog.jsonl")) == 3
    with pytest.raises(SystemExit):
        main(args)  # exists, no --overwrite
    capsys.readouterr()
    assert main(args[:3] + ["2"] + args[4:] + ["--overwrite"]) == 0
    assert len(_read_jsonl(out / "catalog.jsonl")) == 2
    assert sorted(os.listdir(out / "images")) == ["p000000_0.png", "p000001_0.png"]
