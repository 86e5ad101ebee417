"""End to end: generated catalog -> shards, checked through the data layer's reader."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from kaleido_tf.datasets.tfrecord_reader import make_tfrecord_dataset
from kaleido_tf.datasets.tfrecord_writer import read_schema_json
from kaleido_tf.preprocessors.cli import build_parser, config_from_args, main
from kaleido_tf.preprocessors.feature_extractor import build_feature_extractor
from kaleido_tf.preprocessors.foreground import ForegroundDetector
from kaleido_tf.preprocessors.image_loader import ImageLoader
from kaleido_tf.preprocessors.kaleido_patches import LEVEL_OFFSETS, KaleidoPatchGenerator
from kaleido_tf.preprocessors.kaleido_tasks import JIGSAW_PERMUTATIONS, rotate_crop
from kaleido_tf.preprocessors.pipeline import Preprocessor, ShardSettingsMismatch
from kaleido_tf.preprocessors.text_tokenizer import build_tokenizer
from tests.preprocessors.factory import make_catalog, shape_image, small_args

ROT, JIG, CAM, GREY, BLANK = LEVEL_OFFSETS
F = 8
SUBCATS = [("tops", "t-shirts"), ("tops", "shirts"), ("bottoms", "jeans")]


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer("wordpiece")


@pytest.fixture(scope="module")
def extractor():
    return build_feature_extractor("pixels", crop_size=16, feature_size=F, seed=0)


def _run(tokenizer, extractor, catalog, out, **overrides):
    overrides.setdefault("feature_dtype", "float32")
    config = config_from_args(build_parser().parse_args(small_args(catalog, out, **overrides)))
    return Preprocessor(config, feature_extractor=extractor, tokenizer=tokenizer).run()


def _load(directory):
    """All examples of a shard directory as {field: numpy array [N, ...]} via make_tfrecord_dataset."""
    batches = list(make_tfrecord_dataset(directory, batch_size=512, training=False).as_numpy_iterator())
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]} if batches else {}


def _strings(column):
    return [v[0].decode() for v in column]


@pytest.fixture(scope="module")
def run_all(tmp_path_factory, tokenizer, extractor):
    root = str(tmp_path_factory.mktemp("catalog"))
    catalog, products = make_catalog(
        root, num_products=24, images_per_product=1, splits=["train", "test"], subcats=SUBCATS
    )
    out = os.path.join(root, "out")
    summary = _run(tokenizer, extractor, catalog, out)
    return {"root": root, "catalog": catalog, "products": products, "out": out, "summary": summary}


def test_outputs_exist_and_load_with_the_right_shapes(run_all):
    out, summary = run_all["out"], run_all["summary"]
    expected_dirs = [
        "pretrain/train",
        "pretrain/valid",
        "finetune/train",
        "finetune/valid",
        "finetune/test",
        "retrieval/txt2img",
        "retrieval/img2txt",
    ]
    for d in expected_dirs:
        assert os.path.exists(os.path.join(out, d, "part-00000-of-00001.tfrecord")), d
        meta = read_schema_json(os.path.join(out, d))
        assert meta.schema["img_loc_position_camouflage"].length == 45
        assert meta.schema["img_loc_position_grey_mask"].dtype == "float"
    pre = _load(os.path.join(out, "pretrain/train"))
    n = summary["pretrain"]["examples"]["train"]
    assert n == 24 and len(pre["input_ids"]) == n  # 12 train images x (1 positive + 1 negative)
    shapes = {
        "input_ids": 16,
        "masked_lm_positions": 3,
        "masked_lm_weights": 3,
        "img_feature_convert_rotation": F,
        "img_feature_convert_jigsaw": 4 * F,
        "img_feature_convert_camouflage": 9 * F,
        "img_feature_convert_grey_mask": 16 * F,
        "img_feature_convert_blank_mask": 25 * F,
        "image_mask": 55,
        "img_loc_position_rotation": 5,
        "img_loc_position_jigsaw": 20,
        "img_loc_position_camouflage": 45,
        "img_loc_position_grey_mask": 80,
        "img_loc_position_blank_mask": 125,
        "img_grey_lm_ids": 2,
        "img_blank_lm_ids": 3,
        "img_grey_mask_gt": 2 * F,
        "nx_sent_labels": 1,
        "img_camouflage_gt": 1,
    }
    for name, length in shapes.items():
        assert pre[name].shape == (n, length), name
    assert (pre["image_mask"] == 1).all()
    fine = _load(os.path.join(out, "finetune/test"))
    assert len(fine["input_ids"]) == 12 and fine["img_feature_convert_blank_mask"].shape == (12, 25 * F)
    with open(os.path.join(out, "label_maps/subcategory.json")) as f:
        subcats = json.load(f)
    assert subcats == {"jeans": 0, "shirts": 1, "t-shirts": 2}
    by_id = {p["product_id"]: p for p in run_all["products"]}
    for pid, sub, sub_id in zip(
        _strings(fine["text_prod_id"]), _strings(fine["img_subcategory"]), fine["img_subcategory_id"][:, 0]
    ):
        assert by_id[pid]["subcategory"] == sub and subcats[sub] == sub_id
    assert not os.path.exists(os.path.join(out, "pretrain/test"))  # test products are held out of pretraining
    with open(os.path.join(out, "rejected.tsv")) as f:
        assert f.read().splitlines() == ["location\tproduct_id\timage\tstage\treason"]


def test_pretraining_labels_match_their_transformations(run_all, extractor):
    out = run_all["out"]
    pre = _load(os.path.join(out, "pretrain/train"))
    fine = _load(os.path.join(out, "finetune/train"))
    # the blank level is untransformed: it identifies the image of each pretraining example
    blank_to_fine = {fine["img_feature_convert_blank_mask"][i].tobytes(): i for i in range(len(fine["input_ids"]))}
    labels = {"rot": set(), "cam": set(), "itm": []}
    loader = ImageLoader(min_size=16)
    patcher = KaleidoPatchGenerator(crop_size=16, foreground=ForegroundDetector("saliency"))
    by_id = {p["product_id"]: p for p in run_all["products"]}
    for e in range(len(pre["input_ids"])):
        j = blank_to_fine[pre["img_feature_convert_blank_mask"][e].tobytes()]
        base = np.concatenate(
            [
                fine[f"img_feature_convert_{lv}"][j].reshape(-1, F)
                for lv in ("rotation", "jigsaw", "camouflage", "grey_mask", "blank_mask")
            ]
        )
        feats = np.concatenate(
            [
                pre[f"img_feature_convert_{lv}"][e].reshape(-1, F)
                for lv in ("rotation", "jigsaw", "camouflage", "grey_mask", "blank_mask")
            ]
        )
        for lv in ("rotation", "jigsaw", "camouflage", "grey_mask", "blank_mask"):
            np.testing.assert_array_equal(pre[f"img_loc_position_{lv}"][e], fine[f"img_loc_position_{lv}"][j])
        # rotation: the feature is that of the level-1 crop turned by the label
        k = int(pre["img_rotate_gt"][e, 0])
        labels["rot"].add(k)
        image = loader.load(
            os.path.join(run_all["root"], by_id[_strings(fine["text_prod_id"][j : j + 1])[0]]["images"][0])
        ).image
        crop = patcher(image).crop(ROT)
        np.testing.assert_allclose(feats[ROT], extractor(rotate_crop(crop, k)[None])[0], rtol=1e-5, atol=1e-5)
        # jigsaw: slot i shows cell perm[i]
        perm = JIGSAW_PERMUTATIONS[int(pre["img_jigsaw_gt"][e, 0])]
        np.testing.assert_array_equal(feats[JIG : JIG + 4], base[[JIG + p for p in perm]])
        # camouflage: only the labelled slot differs
        slot = int(pre["img_camouflage_gt"][e, 0])
        labels["cam"].add(slot)
        differs = [not np.array_equal(feats[CAM + i], base[CAM + i]) for i in range(9)]
        assert differs == [i == slot for i in range(9)]
        # grey: targets are the colour features; the greyed features differ; other cells unchanged
        grey_ids = pre["img_grey_lm_ids"][e].tolist()
        np.testing.assert_array_equal(pre["img_grey_mask_gt"][e].reshape(2, F), base[[GREY + g for g in grey_ids]])
        for i in range(16):
            assert np.array_equal(feats[GREY + i], base[GREY + i]) == (i not in grey_ids)
        assert len(set(pre["img_blank_lm_ids"][e].tolist())) == 3
        # text: positives carry their own text, negatives another one; masked labels are the original tokens
        label = int(pre["nx_sent_labels"][e, 0])
        labels["itm"].append(label)
        n_pred = int(pre["masked_lm_weights"][e].sum())
        assert 1 <= n_pred <= 3
        pos = pre["masked_lm_positions"][e, :n_pred]
        original = pre["input_ids"][e].copy()
        original[pos] = pre["masked_lm_ids"][e, :n_pred]  # undo the masking
        assert np.array_equal(original, fine["input_ids"][j]) == (label == 1)
        assert (pre["input_ids"][e] == 103).sum() <= n_pred
    assert labels["itm"].count(1) == labels["itm"].count(0) == 12
    assert len(labels["rot"]) >= 3 and len(labels["cam"]) >= 5


def test_retrieval_sets_structure_and_order(run_all):
    out, products = run_all["out"], run_all["products"]
    by_id = {p["product_id"]: p for p in products}
    summary = run_all["summary"]["retrieval"]
    for direction in ("txt2img", "img2txt"):
        sets_path = os.path.join(out, "retrieval", direction, "sets.part-00000-of-00001.jsonl")
        with open(sets_path) as f:
            sets = [json.loads(line) for line in f]
        assert [s["query_rank"] for s in sets] == [0, 1, 2, 3]
        data = _load(os.path.join(out, "retrieval", direction))
        assert len(data["input_ids"]) == 4 * 4
        row = 0
        for s in sets:
            query = by_id[s["query_product_id"]]
            assert query.get("split") == "test"
            cands = s["candidates"]
            assert len(cands) == 4 and sum(c["label"] for c in cands) == 1  # 1 positive + 3 negatives
            key = "image_prod_id" if direction == "txt2img" else "text_prod_id"
            fixed = "text_prod_id" if direction == "txt2img" else "image_prod_id"
            others = [c[key] for c in cands if not c["label"]]
            assert len(set(others)) == 3 and query["product_id"] not in others
            assert all(c[fixed] == query["product_id"] for c in cands)
            # 4 test products per subcategory: negatives all come from the query's subcategory
            assert all(by_id[o]["subcategory"] == query["subcategory"] for o in others)
            assert s["negative_tiers"] == {"subcategory": 3}
            for c in cands:  # the shard follows the sets file, query by query
                assert _strings(data["text_prod_id"][row : row + 1])[0] == c["text_prod_id"]
                assert _strings(data["image_prod_id"][row : row + 1])[0] == c["image_prod_id"]
                assert _strings(data["prod_img_id"][row : row + 1])[0] == c["prod_img_id"]
                assert int(data["nx_sent_labels"][row, 0]) == c["label"]
                row += 1
        assert summary[direction]["queries"]["written"] == 4 and summary["notes"] == []


def _all_files(out):
    found = {}
    for dirpath, _, names in os.walk(out):
        for name in names:
            if name.endswith((".tfrecord", ".jsonl")) or name in ("category.json", "subcategory.json"):
                with open(os.path.join(dirpath, name), "rb") as f:
                    found[os.path.relpath(os.path.join(dirpath, name), out)] = f.read()
    return found


def _example_keys(directory):
    """Each example as a canonical tuple of its values (independent of shard and order)."""
    import tensorflow as tf

    keys = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".tfrecord"):
            for record in tf.data.TFRecordDataset(os.path.join(directory, name)).as_numpy_iterator():
                ex = tf.train.Example.FromString(record).features.feature
                keys.append(tuple((k, str(ex[k]).strip()) for k in sorted(ex)))
    return sorted(keys)


def test_determinism_sharding_and_reruns(run_all, tokenizer, extractor, tmp_path):
    catalog, out = run_all["catalog"], run_all["out"]
    first = _all_files(out)
    again = str(tmp_path / "again")
    _run(tokenizer, extractor, catalog, again)
    assert _all_files(again) == first  # same seed: byte-identical shards, sets and label maps
    other_seed = str(tmp_path / "seed")
    _run(tokenizer, extractor, catalog, other_seed, seed=8, task="pretrain")
    assert (
        _all_files(other_seed)["pretrain/train/part-00000-of-00001.tfrecord"]
        != first["pretrain/train/part-00000-of-00001.tfrecord"]
    )

    # two shards hold exactly the examples of one run, whichever machine made them
    sharded = str(tmp_path / "sharded")
    for i in (1, 0):
        summary = _run(tokenizer, extractor, catalog, sharded, num_shards=2, shard_index=i)
    assert summary["shards"]["pretrain"] == ["part-00000-of-00002", "part-00001-of-00002"]
    for d in ("pretrain/train", "finetune/train", "finetune/test", "retrieval/txt2img", "retrieval/img2txt"):
        assert _example_keys(os.path.join(sharded, d)) == _example_keys(os.path.join(out, d)), d
        assert read_schema_json(os.path.join(sharded, d)).counts["num_shards_done"] == 2
    assert summary["pretrain"]["examples"] == run_all["summary"]["pretrain"]["examples"]
    sets = []
    for i in (0, 1):
        with open(os.path.join(sharded, f"retrieval/txt2img/sets.part-0000{i}-of-00002.jsonl")) as f:
            sets += [json.loads(line) for line in f]
    with open(os.path.join(out, "retrieval/txt2img/sets.part-00000-of-00001.jsonl")) as f:
        assert sorted(sets, key=lambda s: s["query_rank"]) == [json.loads(line) for line in f]

    # a rerun skips finished shards; other settings need --overwrite
    shard = os.path.join(sharded, "pretrain/train/part-00000-of-00002.tfrecord")
    before = os.stat(shard).st_mtime_ns
    _run(tokenizer, extractor, catalog, sharded, num_shards=2, shard_index=0)
    assert os.stat(shard).st_mtime_ns == before
    with pytest.raises(ShardSettingsMismatch, match="pretrain.*--overwrite"):
        _run(tokenizer, extractor, catalog, sharded, num_shards=2, shard_index=0, neg_ratio=2)
    _run(
        tokenizer,
        extractor,
        catalog,
        sharded,
        num_shards=2,
        shard_index=0,
        neg_ratio=2,
        overwrite=True,
        task="pretrain",
    )
    assert os.stat(shard).st_mtime_ns != before
    # a shard whose output vanished is redone even though its marker exists
    os.remove(os.path.join(sharded, "finetune/test/part-00001-of-00002.tfrecord"))
    _run(tokenizer, extractor, catalog, sharded, num_shards=2, shard_index=1, task="finetune")
    assert os.path.exists(os.path.join(sharded, "finetune/test/part-00001-of-00002.tfrecord"))


def test_bad_images_and_records_each_get_a_reason(tmp_path, tokenizer, extractor):
    root = str(tmp_path)
    catalog, products = make_catalog(root, num_products=6, splits=["train"])
    img = os.path.join(root, "images")
    shape_image(os.path.join(img, "grey.png"), (90, 90, 90), mode="L")
    shape_image(os.path.join(img, "cmyk.jpg"), (200, 30, 30), mode="CMYK")
    shape_image(os.path.join(img, "rgba.png"), (30, 30, 200), mode="RGBA")
    shape_image(os.path.join(img, "huge.png"), (30, 200, 30), size=(900, 700), box=(200, 100, 700, 600))
    Image.new("RGB", (10, 10), "red").save(os.path.join(img, "tiny.png"))
    with open(os.path.join(img, "corrupt.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    extra = [
        {"product_id": "good", "images": ["images/grey.png", "images/cmyk.jpg", "images/rgba.png", "images/huge.png"]},
        {"product_id": "mixed", "images": ["images/missing.png", "images/p0000_0.png"]},
        {"product_id": "lost", "images": ["images/tiny.png", "images/corrupt.jpg", "images/nothere.jpg"]},
    ]
    with open(catalog, "a") as f:
        for e in extra:
            e.update(
                {"text": f"{e['product_id']} jacket", "category": "tops", "subcategory": "shirts", "split": "train"}
            )
            f.write(json.dumps(e) + "\n")
        f.write(json.dumps(products[2]) + "\n")  # duplicate id, line 10
        f.write('{"product_id": "broken", "images": []}\n')  # line 11
    with pytest.raises(ValueError, match=r"catalog.jsonl:11: missing field 'text'"):
        _run(tokenizer, extractor, catalog, str(tmp_path / "out0"), task="finetune")
    out = str(tmp_path / "out")
    summary = _run(tokenizer, extractor, catalog, out, task="finetune", bad_records="reject", max_image_size=256)
    with open(os.path.join(out, "rejected.tsv")) as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    reasons = {(r[1], r[2]): (r[0], r[3], r[4]) for r in rows}
    assert reasons[("mixed", "images/missing.png")] == ("catalog.jsonl:8", "image", "missing file")
    assert reasons[("lost", "images/tiny.png")][2].startswith("too small: 10x10")
    assert reasons[("lost", "images/corrupt.jpg")][2].startswith("corrupt or unreadable image")
    assert reasons[("lost", "images/nothere.jpg")][2] == "missing file"
    assert reasons[("lost", "")][1:] == ("product", "no usable image: every image of the product was rejected")
    assert reasons[("p0002", "")] == (
        "catalog.jsonl:10",
        "catalog",
        "duplicate product_id (first occurrence at line 3)",
    )
    assert reasons[("", "")][0] == "catalog.jsonl:11" and "field 'text'" in reasons[("", "")][2]
    assert len(rows) == 7
    conv = summary["finetune"]["images"]["conversions"]
    assert conv == {"alpha->rgb": 1, "cmyk->rgb": 1, "downscaled": 1, "greyscale->rgb": 1}
    fine = _load(os.path.join(out, "finetune/train"))
    ids = _strings(fine["prod_img_id"])
    assert ids == [
        "p0000_0",
        "p0001_0",
        "p0002_0",
        "p0003_0",
        "p0004_0",
        "p0005_0",
        "good_0",
        "good_1",
        "good_2",
        "good_3",
        "mixed_1",
    ]
    assert summary["rejected"]["by_stage_and_reason"]["image"] == {
        "corrupt or unreadable image": 1,
        "missing file": 2,
        "too small": 1,
    }


def test_cli_csv_catalog_and_alignments(tmp_path):
    catalog, products = make_catalog(str(tmp_path), num_products=8, fmt="csv", splits=["train", "valid"])
    align = tmp_path / "align.jsonl"
    with open(align, "w") as f:
        for p in products:
            f.write(
                json.dumps(
                    {
                        "product_id": p["product_id"],
                        "image": 0,
                        "alignments": [
                            {"token": "collar", "level": 4, "patch": 2},
                            {"token": "sleeves", "level": 5, "patch": 7},
                            {"token": "striped", "level": 3, "patch": 1},
                        ],
                    }
                )
                + "\n"
            )
    out = str(tmp_path / "out")
    assert (
        main(
            small_args(
                catalog,
                out,
                task="pretrain,retrieval",
                alignments=str(align),
                whole_word_mask=True,
                retrieval_split="valid",
            )
        )
        == 0
    )
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    # the four valid products are in four subcategories: negatives come from wider tiers, and the summary says so
    by_id = {p["product_id"]: p for p in products}
    with open(os.path.join(out, "retrieval/img2txt/sets.part-00000-of-00001.jsonl")) as f:
        sets = [json.loads(line) for line in f]
    assert len(sets) == 4
    for s in sets:
        query = by_id[s["query_product_id"]]
        negatives = [by_id[c["text_prod_id"]] for c in s["candidates"] if not c["label"]]
        assert len(negatives) == 3 and all(n["subcategory"] != query["subcategory"] for n in negatives)
        same_category = sum(n["category"] == query["category"] for n in negatives)
        assert s["negative_tiers"].get("category", 0) == same_category
        assert s["negative_tiers"].get("split", 0) == 3 - same_category  # the valid split holds only 4 products
    notes = summary["retrieval"]["notes"]
    assert notes == [
        "txt2img: 4 of 4 queries took negatives beyond their subcategory (too few products in it)",
        "img2txt: 4 of 4 queries took negatives beyond their subcategory (too few products in it)",
    ]
    stats = summary["pretrain"]["alignment"]
    assert stats["examples"] == 8 and stats["pairs"] == 24 and stats["unmatched"] == 0
    assert stats["token_side"] + stats["patch_side"] + stats["skipped"] == 24 and stats["patch_side"] > 0
    assert summary["pretrain"]["examples"] == {"train": 8, "valid": 8}
    assert main(small_args(catalog, str(tmp_path / "x"), shard_index=3)) == 2  # clear error, no traceback
