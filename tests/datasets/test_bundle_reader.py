"""Bundle (list file + TSV) reader: file resolution, values, sharding, determinism and errors."""

import re

import numpy as np
import pytest
import tensorflow as tf

from kaleido_tf.datasets import DataError, DataFileNotFoundError, make_bundle_dataset, parse_tsv_line, read_list_file

from .conftest import collect, example_rows, good_line, make_bundle, write_lines


def test_values_dtypes_and_shapes(tmp_path, tiny_schema):
    list_file, examples = make_bundle(tmp_path, tiny_schema, 7, num_files=3)
    dataset = make_bundle_dataset(list_file, tiny_schema, batch_size=3, training=False)
    batches = list(dataset)
    assert [int(b["uid"].shape[0]) for b in batches] == [3, 3, 1]
    first = batches[0]
    assert first["ids"].dtype == tf.int64 and first["ids"].shape == (3, 6)
    assert first["label"].dtype == tf.int64 and first["label"].shape == (3, 1)
    assert first["weights"].dtype == tf.float32 and first["feat"].shape == (3, 96)
    assert first["name"].dtype == tf.string and first["name"].shape == (3, 1)
    got = collect(dataset)
    want = example_rows(examples, tiny_schema)
    for name in tiny_schema.names:  # evaluation order is list order, then line order
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_tf_parser_matches_python_parser(tmp_path, tiny_schema):
    list_file, _ = make_bundle(tmp_path, tiny_schema, 4, float_decimals=None)
    lines = (tmp_path / "part_000.tsv").read_bytes().splitlines()
    got = collect(make_bundle_dataset(list_file, tiny_schema, batch_size=4, training=False))
    for index, line in enumerate(lines):
        want = parse_tsv_line(line, tiny_schema)
        for name in tiny_schema.names:
            np.testing.assert_array_equal(got[name][index], want[name], err_msg=name)


def test_base64_float_fields(tmp_path, tiny_schema):
    list_file, examples = make_bundle(tmp_path, tiny_schema, 3, base64_fields=("feat", "weights"))
    text = (tmp_path / "part_000.tsv").read_text().splitlines()[0].split("\t")
    assert "," not in text[tiny_schema.names.index("feat")]
    got = collect(make_bundle_dataset(list_file, tiny_schema, batch_size=2, training=False))
    np.testing.assert_array_equal(got["feat"], example_rows(examples, tiny_schema)["feat"])
    np.testing.assert_array_equal(got["weights"], example_rows(examples, tiny_schema)["weights"])


def test_list_file_resolution(tmp_path, monkeypatch, tiny_schema):
    make_bundle(tmp_path / "a", tiny_schema, 2)
    make_bundle(tmp_path / "cwd", tiny_schema, 2, seed=1)
    lists = tmp_path / "lists"
    lists.mkdir()
    # beside the list file, then the current directory; blank and digit-only lines are skipped
    (lists / "train.list").write_text(f"../a/part_000.tsv\n\n12\ncwd/part_000.tsv\n{tmp_path}/a/part_000.tsv\n")
    monkeypatch.chdir(tmp_path)
    files = read_list_file(str(lists / "train.list"))
    assert files == [
        str(tmp_path / "a" / "part_000.tsv"),
        str(tmp_path / "cwd" / "part_000.tsv"),
        str(tmp_path / "a" / "part_000.tsv"),
    ]
    got = collect(make_bundle_dataset(str(lists / "train.list"), tiny_schema, batch_size=8, training=False))
    assert got["uid"].tolist() == [[0, 0], [1, 0], [0, 1], [1, 1], [0, 0], [1, 0]]


def test_missing_and_empty_files(tmp_path, tiny_schema):
    with pytest.raises(DataFileNotFoundError, match="list file .*nope.list does not exist"):
        make_bundle_dataset(str(tmp_path / "nope.list"), tiny_schema, 2, training=False)
    empty_list = tmp_path / "empty.list"
    empty_list.write_text("\n \n")
    with pytest.raises(DataError, match="empty.list is empty: it names no data files"):
        make_bundle_dataset(str(empty_list), tiny_schema, 2, training=False)
    missing = tmp_path / "missing.list"
    missing.write_text("part_000.tsv\ngone.tsv\n")
    (tmp_path / "part_000.tsv").write_text("x\n")
    with pytest.raises(FileNotFoundError, match=r"missing.list:2: data file 'gone.tsv' not found"):
        make_bundle_dataset(str(missing), tiny_schema, 2, training=False)
    (tmp_path / "zero.tsv").write_text("")
    zero = tmp_path / "zero.list"
    zero.write_text("zero.tsv\n")
    with pytest.raises(DataError, match=r"zero.list:1: data file .*zero.tsv is empty"):
        make_bundle_dataset(str(zero), tiny_schema, 2, training=False)


BAD_LINES = [
    ({"ids": "1,2,3"}, r"field ids: wrong list length: expected 6 values, found 3"),
    ({"ids": "1,2,3,4,5,six"}, r"field ids: value 6 of 6 \(six\) is not an integer"),
    ({"weights": "0.5,nan,1"}, r"field weights: value 2 of 3 is NaN"),
    ({"weights": "0.5,1,1e40"}, r"field weights: value 3 of 3 is Inf"),
    ({"label": "1.5"}, r"field label: value 1 of 1 \(1.5\) is not an integer"),
]


@pytest.mark.parametrize("overrides, pattern", BAD_LINES)
def test_bad_line_stops_the_reader_naming_file_line_and_field(tmp_path, tiny_schema, overrides, pattern):
    lines = ["\t".join(good_line(tiny_schema, seed=0)), "\t".join(good_line(tiny_schema, seed=1, **overrides))]
    list_file = write_lines(tmp_path, lines)
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        collect(make_bundle_dataset(list_file, tiny_schema, batch_size=1, training=False))
    message = str(info.value)
    assert f"{tmp_path / 'data.tsv'}:2: " in message
    assert re.search(pattern, message), message


def test_wrong_field_count_in_reader(tmp_path, tiny_schema):
    columns = good_line(tiny_schema)
    list_file = write_lines(tmp_path, ["\t".join(columns), "\t".join(columns[:-2])])
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"data.tsv:2: wrong field count: expected 7 tab-separated fields .*found 5",
    ):
        collect(make_bundle_dataset(list_file, tiny_schema, batch_size=2, training=False))


def test_crlf_and_spaces_read_like_clean_lines(tmp_path, tiny_schema):
    columns = good_line(tiny_schema)
    spaced = list(columns)
    spaced[1] = spaced[1].replace(",", " , ")
    list_file = write_lines(tmp_path, ["\t".join(columns) + "\r", "\t".join(spaced)])
    got = collect(make_bundle_dataset(list_file, tiny_schema, batch_size=2, training=False))
    for name in tiny_schema.names:
        np.testing.assert_array_equal(got[name][0], got[name][1])


def _uids(dataset):
    return [tuple(row) for row in collect(dataset)["uid"].tolist()]


@pytest.mark.parametrize("num_files", [4, 2])  # by file (4 >= 3 workers), then by line (2 < 3)
def test_sharding_gives_disjoint_covering_sets(tmp_path, tiny_schema, num_files):
    list_file, _ = make_bundle(tmp_path, tiny_schema, 11, num_files=num_files)
    for training in (False, True):
        parts = []
        for index in range(3):
            context = tf.distribute.InputContext(num_input_pipelines=3, input_pipeline_id=index)
            parts.append(
                _uids(
                    make_bundle_dataset(
                        list_file, tiny_schema, 1, training=training, num_epochs=1, input_context=context
                    )
                )
            )
        everything = [uid for part in parts for uid in part]
        assert len(everything) == len(set(everything)) == 11
        assert sorted(everything) == [(i, 0) for i in range(11)]
        assert all(len(part) >= 2 for part in parts)
    alternate = make_bundle_dataset(list_file, tiny_schema, 1, training=False, num_workers=3, worker_index=1)
    context = tf.distribute.InputContext(num_input_pipelines=3, input_pipeline_id=1)
    assert _uids(alternate) == _uids(
        make_bundle_dataset(list_file, tiny_schema, 1, training=False, input_context=context)
    )


def test_eval_is_deterministic_and_training_shuffles(tmp_path, tiny_schema):
    list_file, _ = make_bundle(tmp_path, tiny_schema, 24, num_files=3)
    first = _uids(make_bundle_dataset(list_file, tiny_schema, 5, training=False))
    second = _uids(make_bundle_dataset(list_file, tiny_schema, 5, training=False))
    assert first == second == [(i, 0) for i in range(24)]
    train = make_bundle_dataset(list_file, tiny_schema, 5, training=True, num_epochs=2, seed=3)
    batches = list(train)
    assert all(b["uid"].shape[0] == 5 for b in batches) and len(batches) == 48 // 5  # drop_remainder
    order = [tuple(r) for b in batches for r in b["uid"].numpy().tolist()]
    assert order[:24] != first  # shuffled
    endless = make_bundle_dataset(list_file, tiny_schema, 5, training=True)
    assert len(list(endless.take(12))) == 12  # repeats beyond one epoch (24 lines)
