"""The demo's search stage: its re-ranking depths and the text queries drawn in report.png."""

import json

from kaleido_tf.demo.catalog import generate_catalog
from kaleido_tf.demo.run import SIZES, rerank_depths, search_queries


def test_rerank_depths_hold_a_tenth_of_the_gallery_and_the_protocols_below_it():
    assert rerank_depths(120) == [12, 16, 64]  # 128 is not below the gallery
    assert rerank_depths(24) == [2, 16]
    assert rerank_depths(1300) == [16, 64, 128, 130]
    assert rerank_depths(9) == []  # a tenth rounds to 0; 16 is the whole gallery
    assert all(size["search_steps"] > 0 for size in SIZES.values())


def test_search_queries_name_colour_pattern_and_subcategory_of_distinct_products(tmp_path):
    generate_catalog(str(tmp_path), num_products=16, views_per_product=1, image_size=32, seed=3, overwrite=True)
    path = tmp_path / "catalog.jsonl"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    ids = [r["product_id"] for r in records][::-1]  # the index's order is kept, not the catalog's
    queries = search_queries(str(path), ids)
    by_id = {r["product_id"]: r for r in records}
    assert len(queries) == 3
    assert len({by_id[p]["subcategory"] for _, p in queries}) == 3
    first = next(p for p in ids if by_id[p]["subcategory"] == by_id[queries[0][1]]["subcategory"])
    assert queries[0][1] == first
    for text, product in queries:
        attributes = by_id[product]["attributes"]
        assert text.startswith(attributes["colour"] + " ") and text.endswith(by_id[product]["subcategory"])
        assert "solid" not in text.split()
        assert (attributes["pattern"] in text) == (attributes["pattern"] != "solid")
    assert [p for _, p in search_queries(str(path), ids[:1])] == ids[:1]
