"""The one label-map reader: its checks, and that the preprocessing and the export read through it."""

import json

import pytest

from kaleido_tf.export.label_map import class_names
from kaleido_tf.preprocessors.label_maps import LabelMaps
from kaleido_tf.utils.label_map import check_label_map, names_by_id, read_label_map


def _write(path, entries):
    path.write_text(json.dumps(entries) if not isinstance(entries, str) else entries)
    return path


def test_reads_a_map(tmp_path):
    path = _write(tmp_path / "category.json", {"dress": 0, "shoe": 2})
    assert read_label_map(path) == {"dress": 0, "shoe": 2}
    assert names_by_id(read_label_map(path)) == ["dress", "class_1", "shoe"]
    assert names_by_id({"dress": 0}, 2) == ["dress", "class_1"]
    with pytest.raises(ValueError, match=r"label_map: id 2 of class 'shoe' is outside \[0, 2\)"):
        names_by_id({"shoe": 2}, 2)


@pytest.mark.parametrize(
    "entries, message",
    [
        ({"shoe": 1, "boot": 1}, "classes 'shoe' and 'boot' share id 1"),
        ({"shoe": -1}, "id -1 of class 'shoe' must be >= 0"),
        ({"shoe": True}, "id of class 'shoe' must be an integer, got True"),
        ({"shoe": 1.0}, "id of class 'shoe' must be an integer, got 1.0"),
        ({"": 0}, "class name '' must be a non-empty string"),
        ([["shoe", 1]], "expected a JSON object mapping class name to id, got list"),
        ('{\n  "shoe": 1,\n  "boot" 2\n}\n', "not valid JSON (line 3, column 10"),
    ],
)
def test_every_reader_refuses_alike(tmp_path, entries, message):
    (tmp_path / "maps").mkdir()
    path = _write(tmp_path / "maps" / "category.json", entries)
    _write(tmp_path / "maps" / "subcategory.json", {"a": 0})
    readers = [read_label_map, lambda p: class_names(p, 3), lambda p: LabelMaps.load(tmp_path / "maps")]
    for read in readers:
        with pytest.raises(ValueError) as info:
            read(path)
        assert str(path) in str(info.value) and message in str(info.value)
    if not isinstance(entries, str):
        with pytest.raises(ValueError, match="label_map: "):
            check_label_map(entries)


def test_missing_file(tmp_path):
    for read in (read_label_map, lambda p: class_names(p, 3)):
        with pytest.raises(FileNotFoundError, match="label map not found: .*absent.json"):
            read(tmp_path / "absent.json")
