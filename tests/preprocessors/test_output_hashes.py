"""Byte-identity of the preprocessing and retrieval-scoring outputs against recorded sha256 hashes.

A fixed tiny catalog (several images per product, greyscale / CMYK / alpha / oversize / broken images,
a duplicate id, alignments, two shards) is preprocessed and a seeded result file is scored; every file
written must hash to the value recorded in tests/fixtures/output_hashes.json (TFRecord shards: their
records, see `_records_sha`). A refactoring must leave them all unchanged; a change of behaviour
updates the record on purpose:

    PYTHONPATH=. python -m tests.preprocessors.test_output_hashes --write
"""

import hashlib
import io
import json
import os
import sys
from contextlib import redirect_stdout

import numpy as np
from PIL import Image

from tests.conftest import FIXTURES
from tests.preprocessors.factory import make_catalog, shape_image, small_args

RECORD = os.path.join(FIXTURES, "output_hashes.json")


def _catalog(root):
    catalog, products = make_catalog(
        root, num_products=18, images_per_product=2, splits=["train", "valid", "test", "train"]
    )
    img = os.path.join(root, "images")
    shape_image(os.path.join(img, "grey.png"), (90, 90, 90), mode="L")
    shape_image(os.path.join(img, "cmyk.jpg"), (200, 30, 30), mode="CMYK")
    shape_image(os.path.join(img, "rgba.png"), (30, 30, 200), mode="RGBA")
    shape_image(os.path.join(img, "huge.png"), (30, 200, 30), size=(300, 220), box=(60, 30, 240, 200))
    Image.new("RGB", (10, 10), "red").save(os.path.join(img, "tiny.png"))
    with open(os.path.join(img, "corrupt.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 not a jpeg")
    extra = [
        {"product_id": "good", "images": ["images/grey.png", "images/cmyk.jpg", "images/rgba.png", "images/huge.png"]},
        {"product_id": "mixed", "images": ["images/missing.png", "images/p0000_0.png"]},
        {"product_id": "lost", "images": ["images/tiny.png", "images/corrupt.jpg"]},
    ]
    with open(catalog, "a", encoding="utf-8") as f:
        for e in extra:
            e.update({"text": f"{e['product_id']} jacket", "category": "tops", "subcategory": "shirts"})
            f.write(json.dumps(e) + "\n")
        f.write(json.dumps(products[2]) + "\n")  # a duplicate id
    with open(os.path.join(root, "align.jsonl"), "w", encoding="utf-8") as f:
        for p in products[::2]:
            alignments = [{"token": "collar", "level": 4, "patch": 2}, {"token": "striped", "level": 3, "patch": 1}]
            f.write(json.dumps({"product_id": p["product_id"], "image": 0, "alignments": alignments}) + "\n")
    return os.path.relpath(catalog, root)


def _sha(path):
    if path.endswith(".tfrecord"):
        return _records_sha(path)
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _records_sha(path):
    """sha256 over the records, each checked to be serialised with sorted feature keys (the writer serialises
    deterministically, so a shard has the same bytes in every process; the hash stays the one of the records,
    as recorded before the writer did so)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    digest = hashlib.sha256()
    for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
        record = tf.train.Example.FromString(raw).SerializeToString(deterministic=True)
        assert raw == record, f"{path}: a record is not serialised deterministically"
        digest.update(len(record).to_bytes(8, "little") + record)
    return digest.hexdigest()


def _tree_hashes(root, prefix):
    out = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            out[prefix + os.path.relpath(path, root).replace(os.sep, "/")] = _sha(path)
    return out


def _preprocess(root):
    from kaleido_tf.preprocessors.cli import main  # pylint: disable=import-outside-toplevel

    catalog = _catalog(root)
    common = {"neg_ratio": 1.5, "retrieval_negatives": 4, "retrieval_queries": 5, "max_image_size": 128}
    runs = {
        "one": small_args(catalog, "one", bad_records="reject", alignments="align.jsonl", **common),
        "two": small_args(catalog, "two", bad_records="reject", num_shards=2, whole_word_mask=True, **common),
    }
    hashes = {}
    cwd = os.getcwd()
    os.chdir(root)  # relative paths: summary.json records the settings as given
    try:
        for name, argv in runs.items():
            shards = [["--shard_index", "1"], ["--shard_index", "0"]] if name == "two" else [[]]
            for extra in shards:
                with redirect_stdout(io.StringIO()):
                    assert main(argv + extra) == 0, (name, extra)
            hashes.update(_tree_hashes(name, f"preprocess/{name}/"))
    finally:
        os.chdir(cwd)
    return hashes


def _retrieval(root):
    from kaleido_tf.evaluators import retrieval_cli  # pylint: disable=import-outside-toplevel
    from kaleido_tf.evaluators.retrieval_format import RetrievalResultWriter  # pylint: disable=import-outside-toplevel

    hashes = {}
    for kind, name in (("txt2img", "results.txt"), ("img2txt", "results_img2txt.txt")):
        rng = np.random.default_rng(5)
        path = os.path.join(root, name)
        with RetrievalResultWriter(path) as writer:
            for q in range(12):
                n = 9
                labels = np.zeros(n, np.int64)
                labels[rng.integers(n)] = 1
                logits = rng.normal(size=(n, 2)).astype(np.float32)
                logits[:3, 1] = logits[0, 1]  # ties
                others = [f"c{(q * 7 + j) % 40}" for j in range(n)]
                query = [f"q{q}"] * n
                text, image = (query, others) if kind == "txt2img" else (others, query)
                writer.write_batch(text, image, [f"{i}_0" for i in image], labels, logits)
        hashes[f"retrieval/{name}"] = _sha(path)
        for flag in ([], ["--json"]):
            buffer = io.StringIO()
            with redirect_stdout(buffer):
                assert retrieval_cli.main(["--results", path, "--type", kind, "--noprogress"] + flag) == 0
            text = buffer.getvalue()
            hashes[f"retrieval/{kind}{''.join(flag)}.out"] = hashlib.sha256(text.encode()).hexdigest()
    return hashes


def output_hashes(root):
    """{name: sha256} of every file the two preprocessing runs and the scoring write under `root`."""
    os.makedirs(os.path.join(root, "pre"), exist_ok=True)
    return {**_preprocess(os.path.join(root, "pre")), **_retrieval(root)}


def test_outputs_are_byte_identical_to_the_record(tmp_path):
    with open(RECORD, encoding="utf-8") as f:
        expected = json.load(f)
    actual = output_hashes(str(tmp_path))
    assert sorted(actual) == sorted(expected)
    changed = [name for name in expected if actual[name] != expected[name]]
    assert not changed, changed


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        result = output_hashes(tmp)
    if sys.argv[1:] == ["--write"]:
        with open(RECORD, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"wrote {len(result)} hashes to {RECORD}")
    else:
        print(json.dumps(result, indent=1, sort_keys=True))
