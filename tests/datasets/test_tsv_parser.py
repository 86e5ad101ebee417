"""The python TSV line parser: values, base64 floats and error messages."""

import base64

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaleido_tf.datasets import DataError, Schema, parse_tsv_line
from kaleido_tf.datasets.tsv_parser import _slow_numbers, parse_field

SCHEMA = Schema.parse("ids:int:3,w:float:2,name:str:1,label:int:1")


def test_parses_values_and_types():
    out = parse_tsv_line("1,-2,30\t0.5,-1e-3\tred dress, size M\t7\r\n", SCHEMA, "f.tsv:1")
    np.testing.assert_array_equal(out["ids"], [1, -2, 30])
    assert out["ids"].dtype == np.int64
    np.testing.assert_array_equal(out["w"], np.array([0.5, -1e-3], np.float32))
    assert out["w"].dtype == np.float32
    assert out["name"].tolist() == [b"red dress, size M"]
    np.testing.assert_array_equal(out["label"], [7])


def test_spaces_around_numbers_are_accepted():
    out = parse_tsv_line(" 1, 2 ,3\t 0.5 ,2\tx\t 4 ", SCHEMA)
    np.testing.assert_array_equal(out["ids"], [1, 2, 3])
    np.testing.assert_array_equal(out["w"], [0.5, 2.0])
    np.testing.assert_array_equal(out["label"], [4])


@pytest.mark.parametrize(
    "encode", [base64.b64encode, base64.urlsafe_b64encode, lambda raw: base64.b64encode(raw).rstrip(b"=")]
)
def test_base64_float_fields(encode):
    values = np.array([1.5, -2.25e-7, 3.0e5], dtype="<f4")
    spec = Schema.parse("f:float:3")["f"]
    np.testing.assert_array_equal(parse_field(encode(values.tobytes()), spec), values)
    one = Schema.parse("g:float:1")["g"]
    np.testing.assert_array_equal(parse_field(base64.b64encode(np.float32(2.5).tobytes()), one), [2.5])


def _error(line, schema=SCHEMA):
    with pytest.raises(DataError) as info:
        parse_tsv_line(line, schema, "data/part_1.tsv:17")
    return str(info.value)


def test_wrong_field_count():
    message = _error("1,2,3\t0.5,1\tname")
    assert message.startswith("data/part_1.tsv:17: ")
    assert "expected 4 tab-separated fields" in message and "found 3" in message
    assert "found 1 (the line is empty)" in _error("")


def test_wrong_list_length_names_field_expected_and_found():
    message = _error("1,2\t0.5,1\tname\t1")
    assert "data/part_1.tsv:17" in message and "field ids" in message
    assert "expected 3 values, found 2" in message
    assert "field w" in _error("1,2,3\t0.5,1,2\tname\t1")


@pytest.mark.parametrize(
    "ids, w, label, pattern",
    [
        ("1,x,3", "0.5,1", "1", r"field ids: value 2 of 3 \(x\) is not an integer"),
        ("1,2,3.5", "0.5,1", "1", r"field ids: value 3 of 3 \(3.5\) is not an integer"),
        ("1,2,3", "0.5,abc", "1", r"field w: value 2 of 2 \(abc\) is not a number"),
        ("1,,3", "0.5,1", "1", r"field ids: value 2 of 3 is empty"),
        ("1, ,3", "0.5,1", "1", r"field ids: value 2 of 3 is empty"),
        ("1,2,3", "0.5,1", "", r"field label: value 1 of 1 is empty"),
        ("1,2,3", "0.5,1", "2e3", r"field label: value 1 of 1 \(2e3\) is not an integer"),
        (
            "1,2,99999999999999999999",
            "0.5,1",
            "1",
            r"field ids: value 3 of 3 \(99999999999999999999\) does not "
            r"fit in int64",
        ),
        ("1,2,3", "0.5,1,", "1", r"field w: wrong list length: expected 2 values, found 3"),
    ],
)
def test_bad_values(ids, w, label, pattern):
    message = _error(f"{ids}\t{w}\tname\t{label}")
    assert message.startswith("data/part_1.tsv:17: ")
    assert __import__("re").search(pattern, message), message


@pytest.mark.parametrize("w, kind", [("nan,1", "NaN"), ("1,inf", "Inf"), ("1,-Infinity", "Inf"), ("1e39,1", "Inf")])
def test_nan_and_inf_are_rejected(w, kind):
    message = _error(f"1,2,3\t{w}\tname\t1")
    assert "field w" in message and f"is {kind}" in message


def test_nan_in_base64_features():
    raw = np.array([1.0, np.nan, 2.0], dtype="<f4").tobytes()
    schema = Schema.parse("f:float:3")
    with pytest.raises(DataError, match=r"x.tsv:2: field f: value 2 of 3 \(base64\) is NaN"):
        parse_tsv_line(base64.b64encode(raw), schema, "x.tsv:2")


def test_base64_of_wrong_size():
    raw = np.zeros(2, dtype="<f4").tobytes()
    schema = Schema.parse("f:float:3")
    with pytest.raises(
        DataError,
        match=r"field f: expected 3 comma-separated numbers or base64 of 3 float32 "
        r"values.*not base64 of 12 bytes",
    ):
        parse_tsv_line(base64.b64encode(raw), schema, "x.tsv:2")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, width=32), min_size=1, max_size=20),
    st.sampled_from(["{:.9g}", "{!r}", "{:.3f}", " {:.5e} "]),
)
def test_fast_and_exact_paths_agree(values, template):
    text = ",".join(template.format(v) for v in values).encode()
    spec = Schema.parse(f"f:float:{len(values)}")["f"]
    np.testing.assert_array_equal(parse_field(text, spec), _slow_numbers(text, spec, "t"))
    ints = ",".join(str(int(v)) for v in values).encode()
    ispec = Schema.parse(f"i:int:{len(values)}")["i"]
    np.testing.assert_array_equal(parse_field(ints, ispec), [int(v) for v in values])
