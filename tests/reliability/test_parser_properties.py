"""Property tests: any schema string and any TSV line give a result or a clear ValueError, never a crash.

The schema parser (`Schema.parse`, the `--input_schema` syntax) and the TSV line parser (`parse_tsv_line`,
shared by the bundle reader and the TFRecord converter) see text from many sources. Whatever the text, they
return a value that satisfies their contract, or raise a ValueError whose message says what is wrong (for
lines a `DataError` naming the source, and the field when one is at fault).
"""

import string

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kaleido_tf.datasets import DataError, Schema
from kaleido_tf.datasets.schema import DTYPES
from kaleido_tf.datasets.tsv_parser import parse_tsv_line

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SOURCE = "bundle/part_007.tsv:42"

# ---------------------------------------------------------------------------------------------- schemas
_NAME = st.text(alphabet=string.ascii_letters + string.digits + "_.-é :,\t", min_size=0, max_size=8)
_TYPE = st.one_of(st.sampled_from(["int", "float", "str", "base64", "INT", "double", ""]), st.text(max_size=5))
_LENGTH = st.one_of(
    st.integers(-3, 5000).map(str),
    st.sampled_from(["", "0", "07", "1.5", "1e3", "x", " 4 ", "9" * 30, "9" * 5000, "٣"]),
)


@st.composite
def _near_valid_schema(draw):
    items = draw(st.lists(st.tuples(_NAME, _TYPE, _LENGTH), min_size=0, max_size=6))
    separators = draw(st.lists(st.sampled_from([":", "::", " : "]), min_size=len(items) * 2, max_size=len(items) * 2))
    text = ",".join(
        f"{n}{separators[2 * i]}{t}{separators[2 * i + 1]}{length}" for i, (n, t, length) in enumerate(items)
    )
    return text + draw(st.sampled_from(["", ",", " ", ",,x"]))


def _parse_schema_or_value_error(text):
    try:
        schema = Schema.parse(text)
    except ValueError as e:
        assert str(e).strip(), "a schema error needs a message"
        return None
    # A result is a real schema: unique names, known types, positive lengths, str fields of length 1, and
    # it prints back to a string that parses to the same schema.
    assert len(schema) >= 1 and len(set(schema.names)) == len(schema)
    for spec in schema:
        assert spec.dtype in DTYPES and spec.length >= 1
        assert spec.dtype != "str" or spec.length == 1
    assert Schema.parse(schema.to_string()) == schema
    return schema


@FAST
@given(st.text(max_size=60))
def test_schema_parse_any_text(text):
    _parse_schema_or_value_error(text)


@FAST
@given(_near_valid_schema())
def test_schema_parse_near_valid_text(text):
    _parse_schema_or_value_error(text)


# ---------------------------------------------------------------------------------------------- lines
SCHEMAS = [
    Schema.parse(s)
    for s in (
        "ids:int:3,w:float:2,name:str:1",
        "label:int:1",
        "feat:float:4,mask:int:2",
    )
]

_NUMBER_TOKEN = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(width=32, allow_nan=False, allow_infinity=False).map(lambda x: f"{x:.9g}"),
    st.sampled_from(
        [
            "",
            " ",
            "nan",
            "-inf",
            "Infinity",
            "1e39",
            "1_0",
            "0x10",
            "١",
            "1.5",
            " 7 ",
            "+3",
            "--1",
            "9" * 25,
            "9" * 5000,
            "AAAAAA==",
            "\x00",
            "é",
        ]
    ),
)


@st.composite
def _near_valid_line(draw):
    schema = draw(st.sampled_from(SCHEMAS))
    fields = []
    for spec in schema:
        if spec.dtype == "str":
            fields.append(draw(st.text(alphabet=st.characters(blacklist_characters="\t\n"), max_size=6)))
        else:
            count = draw(st.sampled_from([spec.length, spec.length, spec.length - 1, spec.length + 1, 1]))
            fields.append(",".join(draw(st.lists(_NUMBER_TOKEN, min_size=count, max_size=count))))
    fields = draw(st.sampled_from([fields, fields[:-1], fields + ["extra"]]))
    line = "\t".join(fields) + draw(st.sampled_from(["", "\n", "\r\n", "\r", "\t"]))
    return schema, line


def _parse_line_or_data_error(line, schema):
    try:
        values = parse_tsv_line(line, schema, source=SOURCE)
    except DataError as e:
        message = str(e)
        assert message.startswith(SOURCE + ": "), message
        assert e.field is None or f"field {e.field}:" in message, message
        assert e.field is None or e.field in schema.names
        return None
    # Any other exception (ValueError included) fails the test: every rejection must be a DataError.
    assert list(values) == list(schema.names)
    for spec in schema:
        value = values[spec.name]
        assert value.shape == (spec.length,)
        if spec.dtype == "int":
            assert value.dtype == np.int64
        elif spec.dtype == "float":
            assert value.dtype == np.float32 and np.isfinite(value).all()
        else:
            assert isinstance(value[0], bytes)
    return values


@FAST
@given(st.sampled_from(SCHEMAS), st.one_of(st.text(max_size=80), st.binary(max_size=80)))
def test_tsv_line_any_input(schema, line):
    _parse_line_or_data_error(line, schema)


@FAST
@given(_near_valid_line())
def test_tsv_line_near_valid_input(case):
    schema, line = case
    _parse_line_or_data_error(line, schema)


@FAST
@given(
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=3, max_size=3),
    st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=2, max_size=2),
    # Lone surrogates cannot occur in UTF-8 text read from a file.
    st.text(alphabet=st.characters(blacklist_characters="\t\n\r", blacklist_categories=("Cs",)), max_size=10),
)
def test_tsv_line_valid_values_round_trip(ids, weights, name):
    schema = SCHEMAS[0]
    assume(not name.endswith("\r"))
    line = "\t".join([",".join(map(str, ids)), ",".join(f"{w:.9g}" for w in weights), name])
    values = _parse_line_or_data_error(line, schema)
    assert values is not None, line
    assert values["ids"].tolist() == ids
    np.testing.assert_array_equal(values["w"], np.array(weights, np.float32))
    assert values["name"][0] == name.encode("utf-8")
