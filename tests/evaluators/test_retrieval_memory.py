"""A result file is read as a stream: a long line (a whole prediction in one batch) is parsed item by item, so
scoring a file takes less than twice the file's size (before: 24 times it), with the same pairs and the same
errors as parsing the line whole."""

import os
import tracemalloc

import numpy as np
import pytest

from kaleido_tf.evaluators.retrieval import score_retrieval
from kaleido_tf.evaluators.retrieval_format import (
    FIELD_SEPARATOR,
    RetrievalResultWriter,
    _parse_line,
    read_retrieval_results,
)


def _one_line_file(path, pairs, candidates=101, seed=0):
    """One batch of `pairs` pairs, queries of `candidates` drawn from a catalog of 2,000 products."""
    rng = np.random.default_rng(seed)
    queries = np.arange(pairs) // candidates
    labels = (np.arange(pairs) % candidates == 0).astype(np.int64)
    candidates_ids = [f"prod_{i:06d}" for i in rng.integers(0, 2_000, pairs)]
    with RetrievalResultWriter(path) as writer:
        writer.write_batch(
            [f"query_{q:05d}" for q in queries],
            candidates_ids,
            [f"{c}_0" for c in candidates_ids],
            labels,
            rng.normal(size=(pairs, 2)).astype(np.float32),
        )
    return path


def _as_whole_line(path):
    with open(path, encoding="utf-8") as f:
        return [_parse_line(line.rstrip("\n").rstrip("\r"), f"{path}:{i}") for i, line in enumerate(f, 1)]


def _assert_equal(results, lines):
    text, image, prod, labels, logits = ([x for line in lines for x in line[k]] for k in range(5))
    assert results.text_prod_ids.tolist() == text
    assert results.image_prod_ids.tolist() == image
    assert results.prod_img_ids.tolist() == prod
    np.testing.assert_array_equal(results.labels, np.asarray(labels, np.int32))
    np.testing.assert_array_equal(results.logits, np.asarray(logits, np.float32).reshape(-1, 2))


def test_long_lines_give_the_pairs_of_the_whole_line_parser(tmp_path):
    path = _one_line_file(str(tmp_path / "results.txt"), pairs=3000)
    assert os.path.getsize(path) > 1 << 17  # long enough for the streaming parser
    _assert_equal(read_retrieval_results(path, progress=False), _as_whole_line(path))

    # other spellings of the same pairs: nested labels, trailing commas, CRLF, an escaped id (parsed whole)
    with open(path, encoding="utf-8") as f:
        fields = f.read().rstrip("\n").split(FIELD_SEPARATOR)
    labels = fields[3][1:-1].split(", ")
    variants = {
        "nested": FIELD_SEPARATOR.join([*fields[:3], "[" + ", ".join(f"[{x}]" for x in labels) + "]", fields[4]]),
        "trailing": FIELD_SEPARATOR.join([f[:-1] + ",]" for f in fields]),
        "escaped": FIELD_SEPARATOR.join([fields[0].replace("'query_00000'", "'query\\t0'", 1), *fields[1:]]),
    }
    for name, line in variants.items():
        variant = tmp_path / f"{name}.txt"
        variant.write_bytes((line + ("\r\n" if name == "trailing" else "\n")).encode("utf-8"))
        _assert_equal(read_retrieval_results(str(variant), progress=False), _as_whole_line(str(variant)))


def test_an_error_in_a_long_line_names_file_line_and_item(tmp_path):
    path = _one_line_file(str(tmp_path / "results.txt"), pairs=3000)
    with open(path, encoding="utf-8") as f:
        fields = f.read().rstrip("\n").split(FIELD_SEPARATOR)
    items = fields[3][1:-1].split(", ")
    items[2500] = "2"
    bad = tmp_path / "bad.txt"
    bad.write_text("\n" + FIELD_SEPARATOR.join([*fields[:3], "[" + ", ".join(items) + "]", fields[4]]) + "\n")
    with pytest.raises(ValueError) as caught:
        read_retrieval_results(str(bad), progress=False)
    assert str(caught.value) == f"{bad}:2: field labels item 2500 must be 0 or 1, found 2"


def test_scoring_a_one_line_file_takes_less_than_twice_the_files_size(tmp_path):
    # 50,000 pairs (a 4.6 MB line): large enough that the parser's fixed window is a small part of the peak
    path = _one_line_file(str(tmp_path / "results.txt"), pairs=50_000)
    size = os.path.getsize(path)
    assert size > 4_000_000
    tracemalloc.start()
    try:
        metrics = score_retrieval(read_retrieval_results(path, progress=False), type="txt2img")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert metrics["pairs"] == 50_000 and metrics["queries"] == -(-50_000 // 101)
    # parsing the line whole took about 24 times the file's size; streamed: the pairs and a window (~1.5 times)
    assert peak < 2 * size, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"
