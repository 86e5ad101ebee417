"""The bundle -> TFRecord converter: CLI, counts, strict and lenient modes, atomic output, workers."""

import os
import sys

import numpy as np
import pytest

from kaleido_tf.datasets import DataError, convert_bundles, csv2tfrecord, make_tfrecord_dataset, read_schema_json

from .conftest import TINY_SCHEMA, collect, good_line, make_bundle


def _bundle_with_bad_lines(tmp_path, schema):
    """Two data files, 6 lines, of which file b line 2 and file a line 3 are bad."""
    directory = tmp_path / "bundle"
    directory.mkdir()
    lines_a = [
        "\t".join(good_line(schema, seed=1, uid="0,1")),
        "\t".join(good_line(schema, seed=2, uid="1,1")),
        "\t".join(good_line(schema, seed=3, uid="2,1", ids="1,2,3")),
    ]
    lines_b = [
        "\t".join(good_line(schema, seed=4, uid="3,1")),
        "\t".join(good_line(schema, seed=5, uid="4,1")[:-1]),  # a field short
        "\t".join(good_line(schema, seed=6, uid="5,1", weights="1,2,nan")),
    ]
    (directory / "a.tsv").write_text("\n".join(lines_a) + "\n")
    (directory / "b.tsv").write_text("\n".join(lines_b))  # no final newline
    (directory / "list.txt").write_text("a.tsv\nb.tsv\n")
    return str(directory / "list.txt"), directory


def test_cli_converts_and_reports_counts(tmp_path, tiny_schema, capsys):
    list_file, examples = make_bundle(tmp_path / "bundle", tiny_schema, 7, num_files=2)
    out = tmp_path / "out"
    code = csv2tfrecord.main(
        [
            "--input_fp",
            list_file,
            "--input_schema",
            TINY_SCHEMA,
            "--output_dir",
            str(out),
            "--num_shards",
            "3",
            "--compression",
            "gzip",
            "--num_workers",
            "1",
            "--quiet",
            "--no_length_check",
        ]
    )
    assert code == 0
    assert "lines read: 7, written: 7, rejected: 0 -> 3 shards" in capsys.readouterr().out
    assert sorted(os.listdir(out)) == [f"part-0000{i}-of-00003.tfrecord.gz" for i in range(3)] + ["schema.json"]
    meta = read_schema_json(out)
    assert meta.counts == {"num_examples": 7, "num_shards": 3, "lines_read": 7, "lines_rejected": 0}
    assert meta.compression == "GZIP" and meta.schema.to_string() == TINY_SCHEMA
    got = collect(make_tfrecord_dataset(str(out), 3, training=False))
    assert got["uid"][:, 0].tolist() == list(range(7))  # the original line order
    np.testing.assert_array_equal(got["ids"], np.stack([e["ids"] for e in examples]))


def test_strict_mode_stops_at_the_first_bad_line(tmp_path, tiny_schema, capsys):
    list_file, directory = _bundle_with_bad_lines(tmp_path, tiny_schema)
    out = tmp_path / "out"
    code = csv2tfrecord.main(
        [
            "--input_fp",
            list_file,
            "--input_schema",
            TINY_SCHEMA,
            "--output_dir",
            str(out),
            "--num_workers",
            "1",
            "--num_shards",
            "1",
            "--quiet",
            "--no_length_check",
        ]
    )
    assert code == 1
    error = capsys.readouterr().err
    assert f"{directory / 'a.tsv'}:3: field ids: wrong list length: expected 6 values, found 3" in error
    assert not out.exists() and os.listdir(tmp_path) == ["bundle"]  # nothing partial left behind


def test_strict_failure_keeps_a_previous_output(tmp_path, tiny_schema):
    good_list, _ = make_bundle(tmp_path / "good", tiny_schema, 3)
    out = tmp_path / "out"
    convert_bundles(good_list, tiny_schema, out, num_shards=1, num_workers=1, progress=False, expected_lengths=None)
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    bad_list, _ = _bundle_with_bad_lines(tmp_path, tiny_schema)
    with pytest.raises(DataError, match=r"a.tsv:3: field ids"):
        convert_bundles(bad_list, tiny_schema, out, num_shards=2, num_workers=1, progress=False, expected_lengths=None)
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before
    assert sorted(os.listdir(tmp_path)) == ["bundle", "good", "out"]


def test_lenient_mode_lists_rejected_lines(tmp_path, tiny_schema):
    list_file, directory = _bundle_with_bad_lines(tmp_path, tiny_schema)
    out = tmp_path / "out"
    counts = convert_bundles(
        list_file, tiny_schema, out, num_shards=2, lenient=True, num_workers=1, progress=False, expected_lengths=None
    )
    assert (counts["lines_read"], counts["written"], counts["rejected"]) == (6, 3, 3)
    rows = [line.split("\t") for line in (out / "rejected.tsv").read_text().splitlines()]
    assert rows[0] == ["file", "line", "reason"]
    assert [(os.path.basename(r[0]), r[1]) for r in rows[1:]] == [("a.tsv", "3"), ("b.tsv", "2"), ("b.tsv", "3")]
    assert rows[1][2] == "field ids: wrong list length: expected 6 values, found 3"
    assert "wrong field count: expected 7 tab-separated fields" in rows[2][2] and "found 6" in rows[2][2]
    assert rows[3][2] == "field weights: value 3 of 3 is NaN; NaN and Inf are not allowed in float fields"
    got = collect(make_tfrecord_dataset(str(out), 5, training=False))
    assert got["uid"].tolist() == [[0, 1], [1, 1], [3, 1]]
    assert read_schema_json(out).counts["lines_rejected"] == 3


def test_output_dir_and_input_checks(tmp_path, tiny_schema):
    list_file, _ = make_bundle(tmp_path / "bundle", tiny_schema, 2)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="holds files that a conversion did not write \\(notes.txt\\)"):
        convert_bundles(list_file, tiny_schema, tmp_path / "busy", progress=False, expected_lengths=None)
    assert (tmp_path / "busy" / "notes.txt").read_text() == "keep me"
    with pytest.raises(DataError, match="list file .*missing.list does not exist"):
        convert_bundles(tmp_path / "missing.list", tiny_schema, tmp_path / "o", progress=False, expected_lengths=None)
    with pytest.raises(ValueError, match="img_loc_position_camouflage.*length 35.*expects 45"):
        convert_bundles(list_file, "img_loc_position_camouflage:int:35", tmp_path / "o", progress=False)


def test_run_entry_point(tmp_path, tiny_schema, monkeypatch):
    list_file, _ = make_bundle(tmp_path / "bundle", tiny_schema, 2)
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "kaleido-csv2tfrecord",
            "--input_fp",
            list_file,
            "--input_schema",
            TINY_SCHEMA,
            "--output_dir",
            str(tmp_path / "o"),
            "--quiet",
            "--no_length_check",
            "--num_workers",
            "1",
        ],
    )
    with pytest.raises(SystemExit) as info:
        csv2tfrecord.run()
    assert info.value.code == 0 and (tmp_path / "o" / "schema.json").exists()
    monkeypatch.setattr(sys, "argv", ["kaleido-csv2tfrecord", "--input_fp", list_file])
    with pytest.raises(SystemExit) as info:
        csv2tfrecord.run()
    assert info.value.code == 2  # argparse: missing required arguments


def test_worker_processes_give_the_same_output(tmp_path, tiny_schema):
    list_file, _ = _bundle_with_bad_lines(tmp_path, tiny_schema)
    outputs = {}
    for workers in (1, 2):
        counts = convert_bundles(
            list_file,
            tiny_schema,
            tmp_path / f"w{workers}",
            num_shards=3,
            lenient=True,
            num_workers=workers,
            progress=False,
            expected_lengths=None,
        )
        assert (counts["written"], counts["rejected"]) == (3, 3)
        outputs[workers] = collect(make_tfrecord_dataset(str(tmp_path / f"w{workers}"), 6, training=False))
    assert (tmp_path / "w1" / "rejected.tsv").read_text() == (tmp_path / "w2" / "rejected.tsv").read_text()
    for name in tiny_schema.names:
        np.testing.assert_array_equal(outputs[1][name], outputs[2][name])
