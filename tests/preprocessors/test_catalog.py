"""Catalog reader, hash splits and the catalog index."""

import json

import numpy as np
import pytest

from kaleido_tf.preprocessors.catalog import CatalogError, CatalogReader
from kaleido_tf.preprocessors.catalog_index import CatalogIndex, SplitSettings
from kaleido_tf.preprocessors.hashing import derive_rng, hash_split, shard_of
from tests.preprocessors.factory import make_catalog


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def _product(pid="p1", **kw):
    d = {"product_id": pid, "images": ["a.jpg"], "text": "red shirt", "category": "tops", "subcategory": "shirts"}
    d.update(kw)
    return json.dumps(d)


def test_jsonl_records_paths_lines_and_offsets(tmp_path):
    path = _write(
        tmp_path / "c.jsonl", [_product("p1"), "", _product("p2", images=["/abs/b.png", "sub/c.jpg"], split="valid")]
    )
    reader = CatalogReader(path)
    recs = list(reader)
    assert [r.product_id for r in recs] == ["p1", "p2"]
    assert [r.line for r in recs] == [1, 3]
    assert recs[0].images == (str(tmp_path / "a.jpg"),)
    assert recs[1].images == ("/abs/b.png", str(tmp_path / "sub" / "c.jpg"))
    assert recs[1].raw_images == ("/abs/b.png", "sub/c.jpg")
    assert recs[0].split is None and recs[1].split == "valid"
    assert reader.read_at(recs[1].offset, recs[1].line) == recs[1]
    assert recs[1].image_id(1) == "p2_1"


def test_csv_with_quoted_multiline_text(tmp_path):
    text = (
        "product_id,images,text,category,subcategory,split\n"
        'p1,a.jpg|b.jpg,"soft, warm\nand ""cosy"" knit",tops,sweaters,test\n'
        "p2,c.jpg,plain,tops,tees,\n"
    )
    (tmp_path / "c.csv").write_text(text, encoding="utf-8")
    reader = CatalogReader(str(tmp_path / "c.csv"))
    recs = list(reader)
    assert recs[0].text == 'soft, warm\nand "cosy" knit'
    assert recs[0].raw_images == ("a.jpg", "b.jpg") and recs[0].split == "test"
    assert recs[1].line == 4 and recs[1].split is None
    assert reader.read_at(recs[0].offset, recs[0].line) == recs[0]
    assert reader.read_at(recs[1].offset, recs[1].line) == recs[1]


@pytest.mark.parametrize(
    "line, needle",
    [
        ("{not json", "invalid JSON"),
        (_product(text="  "), "field 'text' is empty"),
        (json.dumps({"product_id": "p", "images": ["a"], "text": "t", "category": "c"}), "missing field 'subcategory'"),
        (_product(images=[]), "'images' is missing or empty"),
        (_product(images="a.jpg"), "must be a list"),
        (_product(split="dev"), "field 'split'"),
        (_product(pid="a\tb"), "tab"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_jsonl_records_name_file_and_line(tmp_path, line, needle):
    path = _write(tmp_path / "c.jsonl", [_product("ok"), line])
    with pytest.raises(CatalogError) as info:
        list(CatalogReader(path))
    assert "c.jsonl:2: " in str(info.value) and needle in str(info.value)
    assert info.value.line == 2
    # scan() hands the error over instead of raising
    items = list(CatalogReader(path).scan())
    assert items[0].product_id == "ok" and isinstance(items[1], CatalogError)


def test_csv_header_and_column_count_errors(tmp_path):
    (tmp_path / "a.csv").write_text("product_id,images,text,category\np,a,t,c\n")
    with pytest.raises(CatalogError, match=r"a\.csv:1: CSV header lacks column\(s\) \['subcategory'\]"):
        CatalogReader(str(tmp_path / "a.csv"))
    (tmp_path / "b.csv").write_text("product_id,images,text,category,subcategory\np,a,t,c\n")
    with pytest.raises(CatalogError, match=r"b\.csv:2: expected 5 CSV columns"):
        list(CatalogReader(str(tmp_path / "b.csv")))
    with pytest.raises(ValueError, match="format not recognised"):
        (tmp_path / "c.txt").write_text("x")
        CatalogReader(str(tmp_path / "c.txt"))


def test_hash_split_is_seeded_and_follows_fractions():
    ids = [f"p{i}" for i in range(4000)]
    splits = [hash_split(p, 3, 0.1, 0.2) for p in ids]
    assert splits == [hash_split(p, 3, 0.1, 0.2) for p in ids]
    share = {s: splits.count(s) / len(ids) for s in ("train", "valid", "test")}
    assert abs(share["valid"] - 0.1) < 0.02 and abs(share["test"] - 0.2) < 0.025
    assert splits != [hash_split(p, 4, 0.1, 0.2) for p in ids]
    with pytest.raises(ValueError):
        hash_split("p", 0, 0.6, 0.6)


def test_rng_and_shards_are_stable():
    a = derive_rng(5, "p1", "text").integers(1 << 30, size=4)
    b = derive_rng(5, "p1", "text").integers(1 << 30, size=4)
    c = derive_rng(5, "p1", "image").integers(1 << 30, size=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    counts = np.bincount([shard_of(f"p{i}", 4) for i in range(2000)], minlength=4)
    assert counts.min() > 400  # roughly uniform


def test_index_groups_duplicates_and_tiers(tmp_path):
    cat, products = make_catalog(str(tmp_path), num_products=15, splits=["train", "test", "valid"])
    with open(cat, "a") as f:  # a duplicate id and a bad record
        f.write(json.dumps(products[3]) + "\n")
        f.write("{oops\n")
    reader = CatalogReader(cat)
    with pytest.raises(CatalogError, match="catalog.jsonl:17"):
        CatalogIndex.build(reader, SplitSettings(seed=1), progress=False)
    index = CatalogIndex.build(reader, SplitSettings(seed=1), bad_records="reject", progress=False)
    assert len(index) == 15 and index.num_records == 17
    assert [e.line for e in index.catalog_errors] == [17]
    assert index.duplicates == [(16, index.duplicates[0][1], 4)]
    assert index.categories == ["bottoms", "shoes", "tops"]
    recs = [r for r in reader.scan() if not isinstance(r, CatalogError)]
    positions = [index.locate(r) for r in recs]
    assert positions[15] is None  # the later duplicate
    assert sorted(positions[:15]) == list(range(15))
    for rec, pos in zip(recs[:15], positions[:15]):
        assert index.record_at(pos) == rec
        a, b = index.subcategory_block(pos)
        members = [index.record_at(p) for p in range(a, b)]
        assert all(m.subcategory == rec.subcategory and m.split == rec.split for m in members)
        tiers = dict(index.tiers(pos, "similar"))
        covered = sorted(p for ranges in tiers.values() for s, e in ranges for p in range(s, e))
        assert covered == list(range(15))  # the four tiers partition the catalog
        for s, e in tiers["category"]:
            assert all(
                index.record_at(p).category == rec.category and index.record_at(p).subcategory != rec.subcategory
                for p in range(s, e)
            )
        for s, e in dict(index.tiers(pos, "different"))["split"]:
            assert all(index.record_at(p).subcategory != rec.subcategory for p in range(s, e))


def test_iter_candidates_distinct_and_exclusion():
    rng = np.random.default_rng(0)
    got = list(CatalogIndex.iter_candidates(rng, [(0, 5), (10, 12)], exclude=lambda p: p == 3))
    assert sorted(got) == [0, 1, 2, 4, 10, 11]
    big = CatalogIndex.iter_candidates(np.random.default_rng(1), [(0, 100_000)])
    first = [next(big) for _ in range(500)]
    assert len(set(first)) == 500 and all(0 <= p < 100_000 for p in first)
