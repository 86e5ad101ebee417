"""Synthetic demo data: a deterministic fashion catalog drawn on the fly (no download needed)."""

from kaleido_tf.demo.catalog import generate_catalog, make_product, plan_catalog, taxonomy_json
from kaleido_tf.demo.taxonomy import CATEGORIES, COLOURS, PATTERNS, SUBCATEGORIES, TAXONOMY

__all__ = [
    "CATEGORIES",
    "COLOURS",
    "PATTERNS",
    "SUBCATEGORIES",
    "TAXONOMY",
    "generate_catalog",
    "make_product",
    "plan_catalog",
    "taxonomy_json",
]
