"""Tiny generated catalogs for the preprocessing tests: coloured shapes on plain backgrounds."""

import json
import os

import numpy as np
from PIL import Image, ImageDraw

COLOURS = [
    (200, 30, 30),
    (30, 160, 40),
    (30, 60, 200),
    (220, 180, 20),
    (150, 40, 170),
    (20, 170, 170),
    (240, 120, 20),
    (90, 90, 90),
]
WORDS = ["red", "green", "blue", "yellow", "purple", "teal", "orange", "grey"]
SUBCATS = [("tops", "t-shirts"), ("tops", "shirts"), ("bottoms", "jeans"), ("bottoms", "skirts"), ("shoes", "sneakers")]


def shape_image(
    path, colour, size=(64, 64), box=(12, 10, 52, 56), shape="rect", background=(255, 255, 255), mode="RGB", mark=0
):
    """Saves a product-like picture: one coloured shape with a stripe and a small mark whose place
    depends on `mark` (so that every product looks different), on a plain background."""
    img = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(img)
    if shape == "ellipse":
        draw.ellipse(box, fill=colour)
    else:
        draw.rectangle(box, fill=colour)
    x0, y0, x1, y1 = box
    draw.rectangle((x0, (y0 + y1) // 2, x1, (y0 + y1) // 2 + 3), fill=tuple(255 - c for c in colour))
    mx = x0 + 2 + (mark * 7) % max(1, x1 - x0 - 8)
    my = y0 + 2 + (mark * 3) % max(1, (y1 - y0) // 2 - 6)
    draw.rectangle((mx, my, mx + 4, my + 4), fill=(255 - colour[2], colour[0], 255 - colour[1]))
    if mode != "RGB":
        img = img.convert(mode)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path)
    return path


def make_catalog(
    root,
    num_products=12,
    images_per_product=1,
    splits=None,
    fmt="jsonl",
    extra_lines=(),
    subcats=SUBCATS,
    size=(64, 64),
):
    """Writes images and a catalog under `root`; returns the catalog path and the product dicts."""
    products = []
    for i in range(num_products):
        cat, sub = subcats[i % len(subcats)]
        colour = COLOURS[i % len(COLOURS)]
        word = WORDS[i % len(WORDS)]
        images = []
        for k in range(images_per_product):
            rel = f"images/p{i:04d}_{k}.png"
            shape_image(
                os.path.join(root, rel),
                colour,
                size=size,
                shape="ellipse" if (i + k) % 2 else "rect",
                box=(8 + 2 * k, 6 + i % 5, size[0] - 10, size[1] - 8),
                mark=i * 3 + k,
            )
            images.append(rel)
        text = f"{word} {sub} number {i} with a striped collar and long sleeves"
        product = {"product_id": f"p{i:04d}", "images": images, "text": text, "category": cat, "subcategory": sub}
        if splits is not None:
            product["split"] = splits[i % len(splits)]
        products.append(product)
    path = os.path.join(root, f"catalog.{fmt}")
    with open(path, "w", encoding="utf-8") as f:
        if fmt == "jsonl":
            for p in products:
                f.write(json.dumps(p) + "\n")
        else:
            has_split = splits is not None
            f.write("product_id,images,text,category,subcategory" + (",split" if has_split else "") + "\n")
            for p in products:
                row = [
                    p["product_id"],
                    "|".join(p["images"]),
                    '"' + p["text"].replace('"', '""') + '"',
                    p["category"],
                    p["subcategory"],
                ] + ([p["split"]] if has_split else [])
                f.write(",".join(row) + "\n")
        for line in extra_lines:
            f.write(line + "\n")
    return path, products


def small_args(catalog, out, **overrides):
    """CLI arguments for a tiny, fast run (pixels extractor, small crops and features)."""
    args = {
        "catalog": catalog,
        "output_dir": out,
        "feature_extractor": "pixels",
        "crop_size": 16,
        "patch_feature_size": 8,
        "text_length": 16,
        "max_predictions": 3,
        "retrieval_negatives": 3,
        "retrieval_queries": 4,
        "min_image_size": 16,
        "seed": 7,
    }
    args.update(overrides)
    argv = []
    for key, value in args.items():
        if value is True:
            argv.append(f"--{key}")
        elif value is not None and value is not False:
            argv += [f"--{key}", str(value)]
    return argv + ["--no_progress"]


def rgb_array(colour, size=16):
    return np.tile(np.asarray(colour, np.uint8), (size, size, 1))
