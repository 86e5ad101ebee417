"""Deterministic synthetic fashion catalog: drawn product photos, captions, labels and word-box alignments.

The catalog lets the whole pipeline (preprocessing, pretraining, finetuning, retrieval) run and visibly
learn on a laptop without downloading anything. Products are drawn with PIL on plain light backgrounds
(see `taxonomy.py` for the categories and silhouettes); every caption names the product's colour,
pattern, subcategory and the details that were drawn, so both category prediction from the image and
image-text retrieval among products of the same subcategory are learnable.

Output directory layout:
  catalog.jsonl     one product per line: product_id, images (paths relative to the directory), text,
                    category, subcategory, split (train / valid / test, by product), attributes
  alignments.jsonl  one line per image: product_id, image_index and the caption words with the boxes
                    ([x1, y1, x2, y2], normalised to [0, 1]) of the parts they describe
  taxonomy.json     ordered category and subcategory names with their ids, colours and patterns
  images/           <product_id>_<view>.png

Everything depends only on the arguments: the same seed gives byte-identical files.

Command line:
  python -m kaleido_tf.demo.catalog --output_dir DIR --num_products N [--views 2] [--image_size 128] [--seed 0]
"""

import argparse
import json
import math
import os
import re
import sys
import time

import numpy as np
from PIL import Image
from tqdm import tqdm

from kaleido_tf.demo.painter import Painter
from kaleido_tf.demo.taxonomy import CATEGORIES, COLOURS, PATTERNS, SUBCATEGORIES, TAXONOMY, pattern_colours
from kaleido_tf.utils.io import atomic_directory

SUPERSAMPLE = 2  # products are drawn at twice the size and box-filtered down (anti-aliasing)
PATTERN_WEIGHTS = (0.24, 0.19, 0.19, 0.19, 0.19)  # solid, striped, polka dot, checked, floral
DETAIL_PROBABILITY = 0.45
MAX_DETAILS = 3
MERGE_GAP = 0.08  # boxes of one part closer than this (canonical units) are reported as one region

_PATTERN_ADJECTIVES = {
    "solid": ("plain", "solid"),
    "striped": ("striped",),
    "polka dot": ("polka dot", "dotted"),
    "checked": ("checked", "plaid", "gingham"),
    "floral": ("floral", "flower print"),
}
_PATTERN_NOUNS = {
    "solid": ("a solid colour", "a plain finish"),
    "striped": ("stripes", "a stripe print", "a striped pattern"),
    "polka dot": ("polka dots", "a polka dot print"),
    "checked": ("a check print", "a checked pattern", "a plaid pattern"),
    "floral": ("a floral print", "a flower pattern"),
}
_STOPWORDS = frozenset(
    (
        "a",
        "an",
        "the",
        "with",
        "and",
        "in",
        "of",
        "this",
        "these",
        "it",
        "they",
        "has",
        "have",
        "comes",
        "come",
        "made",
        "featuring",
        "pair",
        "women's",
        "two",
        "rows",
    )
)
_WORD = re.compile(r"[a-z]+(?:['-][a-z]+)*")

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


# ----- sampling ------------------------------------------------------------------------------------------
def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _sample_attributes(rng, sub):
    """Random visible attributes of one product of subcategory `sub` (a taxonomy.Subcategory)."""
    colour = _pick(rng, tuple(COLOURS))
    pattern = PATTERNS[int(rng.choice(len(PATTERNS), p=PATTERN_WEIGHTS))]
    attributes = {"colour": colour, "pattern": pattern}
    if pattern != "solid":
        attributes["pattern_colour"] = _pick(rng, pattern_colours(colour))
    attributes["material"] = _pick(rng, sub.materials)
    if sub.sleeves:
        attributes["sleeve"] = _pick(rng, sub.sleeves)
    if sub.lengths:
        attributes["length"] = _pick(rng, sub.lengths)
    chosen = [d.name for d in sub.details if rng.random() < DETAIL_PROBABILITY]
    for group in sub.exclusive:
        present = [name for name in chosen if name in group]
        if len(present) > 1:
            keep = _pick(rng, present)
            chosen = [name for name in chosen if name not in group or name == keep]
    while len(chosen) > MAX_DETAILS:
        chosen.pop(int(rng.integers(len(chosen))))
    attributes["details"] = chosen
    return attributes


# ----- captions ------------------------------------------------------------------------------------------
def _article(following):
    return "an " if following[:1] in "aeiou" else "a "


def _with_ink(phrase, ink):
    """Puts the pattern colour into a pattern phrase: "a stripe print" -> "a white stripe print"."""
    bare = re.sub(r"^an? ", "", phrase)
    if bare == phrase:
        return f"{ink} {bare}"
    return _article(ink) + f"{ink} {bare}"


def _join(items):
    """[(text, part)] -> pieces joined as "x", "x and y", "x, y and z"."""
    pieces = []
    for i, item in enumerate(items):
        if i > 0:
            pieces.append((" and " if i == len(items) - 1 else ", ", None))
        pieces.append(item)
    return pieces


def _caption(rng, sub, attributes):
    """Builds a caption from a random template.

    Returns (text, pieces): pieces is a list of (text, part) whose concatenation is the caption;
    `part` names the drawn part a piece describes ("garment", "sleeve", "pocket", ...) or is None
    for connecting words.
    """
    pattern = attributes["pattern"]
    ink = attributes.get("pattern_colour")
    colour = (attributes["colour"], "garment")
    colours = (f"{attributes['colour']} and {ink}" if ink else attributes["colour"], "garment")
    pattern_adj = (_pick(rng, _PATTERN_ADJECTIVES[pattern]), "garment")
    pattern_noun = _pick(rng, _PATTERN_NOUNS[pattern])
    pattern_noun = (_with_ink(pattern_noun, ink) if ink else pattern_noun, "garment")
    material = (attributes["material"], "garment")
    noun = (_pick(rng, sub.nouns), "garment")
    pre = []  # adjectives placed before the noun
    if "length" in attributes:
        pre += [(attributes["length"], "garment"), (" ", None)]
    sleeve = attributes.get("sleeve")
    if sleeve == "sleeveless" and len(sub.sleeves) > 1:
        pre += [("sleeveless", "garment"), (" ", None)]
    features = []
    if sleeve in ("short", "long") and (len(sub.sleeves) > 1 or rng.random() < 0.3):
        features.append((f"{sleeve} sleeves", "sleeve"))
    details = {d.name: d for d in sub.details}
    order = rng.permutation(len(attributes["details"]))
    for i in order:
        name = attributes["details"][int(i)]
        features.append((_pick(rng, details[name].phrases), name))

    template = int(rng.integers(5))
    if template == 0:  # "a red and white striped cotton t-shirt with short sleeves and a chest pocket"
        body = pre + [colours, (" ", None), pattern_adj, (" ", None), material, (" ", None), noun]
        first = body[0][0]
        if sub.plural:
            lead = "a pair of " if rng.random() < 0.5 else ""
        else:
            lead = _article(first)
        pieces = [(lead, None)] + body
        if features:
            pieces += [(" with ", None)] + _join(features)
    elif template == 1:  # "women's maxi dress in navy blue, white polka dot print, with a belt"
        lead = "women's " if sub.category in ("dresses", "skirts") and rng.random() < 0.5 else ""
        bare = (re.sub(r"^an? ", "", pattern_noun[0]), "garment")
        pieces = [(lead, None)] + pre + [noun, (" in ", None), colour, (", ", None), bare]
        if features:
            pieces += [(", with ", None)] + _join(features)
    elif template == 2:  # "striped t-shirt in red and white cotton featuring short sleeves and a logo"
        pieces = [pattern_adj, (" ", None)] + pre + [noun, (" in ", None), colours, (" ", None), material]
        if features:
            pieces += [(" featuring ", None)] + _join(features)
    elif template == 3:  # "red cotton t-shirt with white stripes, short sleeves and a logo"
        pieces = pre + [colour, (" ", None), material, (" ", None), noun, (" with ", None)]
        pieces += _join([pattern_noun] + features)
    else:  # "this t-shirt comes in red with a white stripe print. it has short sleeves and a logo"
        if sub.plural:
            these, verb, subject = "these ", " come in ", "they have "
        else:
            these, verb, subject = "this ", " comes in ", "it has "
        pieces = [(these, None)] + pre + [noun, (verb, None), colour, (" with ", None), pattern_noun]
        if features:
            pieces += [(". " + subject, None)] + _join(features)
    pieces = [(text.lower(), part) for text, part in pieces if text]
    return "".join(text for text, _ in pieces), pieces


# ----- alignments ----------------------------------------------------------------------------------------
def _merge_boxes(boxes, gap=MERGE_GAP):
    """Greedily unites boxes that overlap or lie within `gap` of each other."""
    boxes = [list(b) for b in boxes]
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] - gap <= b[2] and b[0] - gap <= a[2] and a[1] - gap <= b[3] and b[1] - gap <= a[3]:
                    boxes[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def _alignments(pieces, painter):
    """Caption words -> boxes of the parts they describe, in the painter's view."""
    regions = {"garment": [painter.product_box()]}
    out, seen = [], set()
    for text, part in pieces:
        if part is None:
            continue
        if part not in regions:
            if part not in painter.boxes:
                raise ValueError(f"caption piece {text!r} describes part {part!r}, which the drawing never marked")
            regions[part] = _merge_boxes(painter.boxes[part])
        for word in _WORD.findall(text):
            if word in _STOPWORDS:
                continue
            for box in regions[part]:
                view = [round(c, 4) for c in painter.view_box(box)]
                key = (word, tuple(view))
                if key not in seen:
                    seen.add(key)
                    out.append({"word": word, "box": view})
    return out


# ----- drawing -------------------------------------------------------------------------------------------
def _render_view(rng, sub, attributes, image_size, view_index):
    """Draws one view; returns (uint8 array [S, S, 3], painter)."""
    background = tuple(int(v) for v in 228 + rng.integers(-10, 11, size=3))
    if view_index == 0:
        scale, shift_x, shift_y, flip, noise = 1.0, 0.0, 0.0, False, 0.0
    else:
        scale = float(rng.uniform(0.78, 1.0))
        limit = 0.04 + (1.0 - scale) / 2.0
        shift_x, shift_y = (float(v) for v in rng.uniform(-limit, limit, size=2))
        flip = bool(rng.random() < 0.5)
        noise = float(rng.uniform(1.0, 5.0))
    ink = attributes.get("pattern_colour")
    painter = Painter(
        image_size * SUPERSAMPLE,
        scale,
        shift_x,
        shift_y,
        flip,
        background,
        COLOURS[attributes["colour"]],
        attributes["pattern"],
        rng,
        pattern_colour=COLOURS[ink] if ink else None,
    )
    sub.draw(
        painter,
        {"sleeve": attributes.get("sleeve"), "length": attributes.get("length"), "details": set(attributes["details"])},
    )
    pixels = np.asarray(painter.image.reduce(SUPERSAMPLE), dtype=np.int16)  # [S, S, 3]
    if noise > 0:
        pixels = pixels + np.rint(rng.normal(0.0, noise, size=pixels.shape)).astype(np.int16)
    return np.clip(pixels, 0, 255).astype(np.uint8), painter


def make_product(seed, index, subcategory, image_size=128, views_per_product=2):
    """Generates one product deterministically from (seed, index).

    Returns (record, images, alignments): record is the catalog.jsonl entry without "split" and
    "images", images a list of uint8 arrays [S, S, 3], alignments a list (one per view) of
    {"word", "box"} lists.
    """
    sub = TAXONOMY[SUBCATEGORIES.index(subcategory)]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2, index]))
    attributes = _sample_attributes(rng, sub)
    text, pieces = _caption(rng, sub, attributes)
    images, alignments = [], []
    for view in range(views_per_product):
        pixels, painter = _render_view(rng, sub, attributes, image_size, view)
        images.append(pixels)
        alignments.append(_alignments(pieces, painter))
    record = {"text": text, "category": sub.category, "subcategory": sub.name, "attributes": attributes}
    return record, images, alignments


# ----- catalog layout ------------------------------------------------------------------------------------
def plan_catalog(num_products, seed=0, valid_fraction=0.1, test_fraction=0.1):
    """Subcategory and split of every product.

    Subcategories cycle through a fresh seeded permutation of the taxonomy, so they stay balanced and a
    small catalog covers all of them. Splits are drawn per product with a low-discrepancy sequence over
    the products ordered by subcategory: each subcategory gets close to the requested fractions.
    Returns a list of (subcategory, split), one per product.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    order = []
    while len(order) < num_products:
        order.extend(SUBCATEGORIES[int(i)] for i in rng.permutation(len(SUBCATEGORIES)))
    order = order[:num_products]
    offset = float(rng.random())
    ranked = sorted(range(num_products), key=lambda i: (SUBCATEGORIES.index(order[i]), i))
    splits = [None] * num_products
    for k, i in enumerate(ranked):
        r = (offset + (k + 1) * _GOLDEN) % 1.0
        splits[i] = "test" if r < test_fraction else ("valid" if r < test_fraction + valid_fraction else "train")
    return list(zip(order, splits))


def taxonomy_json():
    """The taxonomy as written to taxonomy.json (ids are positions in these lists)."""
    return {
        "categories": list(CATEGORIES),
        "subcategories": [
            {"name": s.name, "category": s.category, "category_id": CATEGORIES.index(s.category), "subcategory_id": i}
            for i, s in enumerate(TAXONOMY)
        ],
        "colours": {name: list(rgb) for name, rgb in COLOURS.items()},
        "patterns": list(PATTERNS),
    }


def _check_int(name, value, low, high=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")


def _prepare_output(output_dir, overwrite):
    if os.path.exists(output_dir):
        if not os.path.isdir(output_dir):
            raise ValueError(f"output_dir {output_dir} exists and is not a directory")
        entries = os.listdir(output_dir)
        if entries and not overwrite:
            raise FileExistsError(
                f"output_dir {output_dir} is not empty (pass overwrite=True / --overwrite "
                "to replace a previous catalog)"
            )
        if entries and "catalog.jsonl" not in entries:
            raise ValueError(
                f"output_dir {output_dir} is not empty and holds no catalog.jsonl: refusing to replace "
                "a directory that is not a previous catalog"
            )


def generate_catalog(
    output_dir,
    num_products,
    views_per_product=2,
    image_size=128,
    seed=0,
    valid_fraction=0.1,
    test_fraction=0.1,
    overwrite=False,
    show_progress=False,
):
    """Writes a synthetic catalog of `num_products` products to `output_dir` (see the module docstring).

    Args:
      output_dir: directory to create; it is built under a temporary name and renamed when complete.
      num_products: number of products (each with `views_per_product` images).
      views_per_product: images per product; view 0 is the centred catalogue shot, the others are
        shifted, scaled, possibly mirrored, with a tinted noisy background.
      image_size: side of the square images in pixels (32..1024).
      seed: non-negative integer; the same arguments give byte-identical output.
      valid_fraction, test_fraction: share of products in the valid and test splits.
      overwrite: replace an existing non-empty `output_dir` (only if it holds a catalog.jsonl).
      show_progress: show a tqdm progress bar.

    Returns:
      A summary dict: output_dir, num_products, num_images, views_per_product, image_size, seed,
      splits / categories / subcategories (product counts) and seconds.
    """
    _check_int("num_products", num_products, 1)
    _check_int("views_per_product", views_per_product, 1, 64)
    _check_int("image_size", image_size, 32, 1024)
    _check_int("seed", seed, 0)
    for name, value in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    if valid_fraction + test_fraction >= 1.0:
        raise ValueError(f"valid_fraction + test_fraction must be < 1, got {valid_fraction} + {test_fraction}")
    output_dir = os.path.abspath(os.fspath(output_dir))
    _prepare_output(output_dir, overwrite)

    start = time.time()
    plan = plan_catalog(num_products, seed, valid_fraction, test_fraction)
    counts = {"splits": {"train": 0, "valid": 0, "test": 0}, "categories": {}, "subcategories": {}}
    with atomic_directory(output_dir, overwrite=True) as tmp:
        os.makedirs(os.path.join(tmp, "images"))
        catalog_lines, alignment_lines = [], []
        bar = tqdm(plan, total=num_products, desc="catalog", unit="product", disable=not show_progress)
        for index, (subcategory, split) in enumerate(bar):
            product_id = f"p{index:06d}"
            record, images, alignments = make_product(seed, index, subcategory, image_size, views_per_product)
            paths = []
            for view, pixels in enumerate(images):
                relative = f"images/{product_id}_{view}.png"
                Image.fromarray(pixels, "RGB").save(os.path.join(tmp, relative), format="PNG")
                paths.append(relative)
                alignment_lines.append(
                    json.dumps({"product_id": product_id, "image_index": view, "alignments": alignments[view]})
                )
            entry = {
                "product_id": product_id,
                "images": paths,
                "text": record["text"],
                "category": record["category"],
                "subcategory": record["subcategory"],
                "split": split,
                "attributes": record["attributes"],
            }
            catalog_lines.append(json.dumps(entry))
            counts["splits"][split] += 1
            counts["categories"][record["category"]] = counts["categories"].get(record["category"], 0) + 1
            counts["subcategories"][subcategory] = counts["subcategories"].get(subcategory, 0) + 1
        bar.close()
        for name, lines in (("catalog.jsonl", catalog_lines), ("alignments.jsonl", alignment_lines)):
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
        with open(os.path.join(tmp, "taxonomy.json"), "w", encoding="utf-8") as f:
            f.write(json.dumps(taxonomy_json(), indent=2) + "\n")
    return {
        "output_dir": output_dir,
        "num_products": num_products,
        "num_images": num_products * views_per_product,
        "views_per_product": views_per_product,
        "image_size": image_size,
        "seed": seed,
        **counts,
        "seconds": round(time.time() - start, 3),
    }


# ----- command line --------------------------------------------------------------------------------------
def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m kaleido_tf.demo.catalog", description="Write a deterministic synthetic fashion catalog."
    )
    parser.add_argument("--output_dir", required=True, help="directory to create")
    parser.add_argument("--num_products", type=int, required=True, help="number of products")
    parser.add_argument("--views", type=int, default=2, help="images per product (default 2)")
    parser.add_argument("--image_size", type=int, default=128, help="image side in pixels (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--valid_fraction", type=float, default=0.1, help="share of products in valid (0.1)")
    parser.add_argument("--test_fraction", type=float, default=0.1, help="share of products in test (0.1)")
    parser.add_argument("--overwrite", action="store_true", help="replace a previous catalog in output_dir")
    args = parser.parse_args(argv)
    try:
        summary = generate_catalog(
            args.output_dir,
            args.num_products,
            views_per_product=args.views,
            image_size=args.image_size,
            seed=args.seed,
            valid_fraction=args.valid_fraction,
            test_fraction=args.test_fraction,
            overwrite=args.overwrite,
            show_progress=True,
        )
    except (ValueError, FileExistsError) as e:
        parser.error(str(e))
    print(json.dumps(summary, indent=2))
    return 0


def run():
    """Console entry point: parses sys.argv."""
    sys.exit(main())


if __name__ == "__main__":
    run()
