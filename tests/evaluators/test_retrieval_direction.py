"""Retrieval shards of one direction refused for the other (prediction with the wrong --type)."""

import json

import pytest

from kaleido_tf.datasets.errors import DataError
from kaleido_tf.evaluators.retrieval_predict import check_retrieval_input, shard_direction


def _shards(root, direction, name=None, with_sets=True):
    d = root / "retrieval" / (name or direction)
    d.mkdir(parents=True)
    (d / "part-00000-of-00001.tfrecord").write_bytes(b"")
    (d / "schema.json").write_text("{}")
    if with_sets:
        line = {"direction": direction, "query_rank": 0, "candidates": []}
        (d / "sets.part-00000-of-00001.jsonl").write_text(json.dumps(line) + "\n")
    return d


def test_the_sets_direction_decides_over_the_directory_name(tmp_path):
    moved = _shards(tmp_path, "img2txt", name="txt2img")  # img2txt shards copied into a txt2img directory
    assert shard_direction(str(moved))[0] == "img2txt"
    with pytest.raises(
        DataError,
        match=r"these are img2txt retrieval shards \(.*sets.part-00000-of-00001.jsonl:1 "
        r"direction\), not txt2img: use --type img2txt or the retrieval/txt2img shards",
    ):
        check_retrieval_input(str(moved), "txt2img")
    check_retrieval_input(str(moved), "img2txt")


def test_files_globs_and_lists_are_checked_by_their_directory(tmp_path):
    t2i = _shards(tmp_path, "txt2img", with_sets=False)  # only the directory name and schema.json
    i2t = _shards(tmp_path, "img2txt")
    check_retrieval_input(str(t2i / "part-00000-of-00001.tfrecord"), "txt2img")
    with pytest.raises(DataError, match="img2txt retrieval shards"):
        check_retrieval_input(f"{t2i}/part-*.tfrecord,{i2t}/part-*.tfrecord", "txt2img")
    with pytest.raises(DataError, match=r"txt2img retrieval shards \(.*schema.json beside it\), not img2txt"):
        check_retrieval_input(str(t2i), "img2txt")
    other = tmp_path / "elsewhere"
    other.mkdir()
    assert shard_direction(str(other)) == (None, None)
    check_retrieval_input(str(other / "x.tfrecord"), "img2txt")  # unknown direction: nothing to refuse
