"""TensorFlow-op parser for bundle TSV lines, with the python parser as referee.

Clean numeric fields (comma lists of plain decimal numbers, the way feature files are written) are
parsed by TF string ops, which run in C++ without the GIL and so scale over the cores of a tf.data map.
Everything else goes to `tsv_parser` through `tf.numpy_function`, field by field: base64 floats,
spaces, and every error (so messages are the python parser's, naming file, line and field). A field
takes the fast path only when a whole-field regular expression proves the text is a valid list of the
right length, so the fast path never accepts what the python parser rejects.

One detail: TF rounds decimal text straight to float32 while python reads float64 first; the two can
differ by one float32 ulp for a number within ~2^-29 (relative) of a float32 rounding midpoint. Both
readers and the converter use this parser, so they always agree with each other.
"""

import numpy as np
import tensorflow as tf

from kaleido_tf.datasets.errors import DataError
from kaleido_tf.datasets.tsv_parser import parse_field, parse_tsv_line

_INT_TOKEN = r"[+-]?[0-9]{1,18}"  # 18 digits always fit in int64
_FLOAT_TOKEN = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_LIST_PATTERNS = {dtype: f"{token}(?:,{token})*" for dtype, token in (("int", _INT_TOKEN), ("float", _FLOAT_TOKEN))}
_TF_DTYPES = {"int": tf.int64, "float": tf.float32, "str": tf.string}
_NP_DTYPES = {"int": np.int64, "float": np.float32}


def _source(path, line_number):
    return f"{path.decode('utf-8', errors='replace')}:{int(line_number)}"


def _python_field(spec):
    """numpy_function body: (values [length], error message or b"") for one numeric field."""

    def parse(text, path, line_number):
        try:
            return parse_field(text, spec, _source(path, line_number)), b""
        except DataError as error:
            return np.zeros([spec.length], _NP_DTYPES[spec.dtype]), str(error).encode("utf-8")

    return parse


def _python_line_error(schema):
    def check(line, path, line_number):
        try:
            parse_tsv_line(line, schema, _source(path, line_number))
        except DataError as error:
            return str(error).encode("utf-8")
        return b""

    return check


def make_line_parser(schema):
    """A function (path, line_number, line) -> (dict of tensors, error message) built from TF ops.

    Values: int64 [length], float32 [length], string [1]. The error message is "" for a good line;
    otherwise it is the `DataError` text of the python parser and the values are placeholders.
    """
    fields = schema.fields

    def field_value(index, spec, parts, path, line_number):
        text = parts[index]
        if spec.dtype == "str":
            return tf.reshape(text, [1]), tf.constant("")

        def slow():
            value, error = tf.numpy_function(
                _python_field(spec), [text, path, line_number], [_TF_DTYPES[spec.dtype], tf.string], stateful=False
            )
            return tf.reshape(value, [spec.length]), tf.reshape(error, [])

        tokens = tf.strings.split(text, ",")  # [n]
        clean = tf.logical_and(
            tf.strings.regex_full_match(text, _LIST_PATTERNS[spec.dtype]), tf.equal(tf.size(tokens), spec.length)
        )

        def fast():
            value = tf.reshape(tf.strings.to_number(tokens, _TF_DTYPES[spec.dtype]), [spec.length])
            if spec.dtype == "float":  # overflow gives Inf: let the python parser report it
                return tf.cond(tf.reduce_all(tf.math.is_finite(value)), lambda: (value, tf.constant("")), slow)
            return value, tf.constant("")

        return tf.cond(clean, fast, slow)

    def all_fields(parts, path, line_number):
        values, errors = [], []
        for index, spec in enumerate(fields):
            value, error = field_value(index, spec, parts, path, line_number)
            values.append(value)
            errors.append(error)
        errors = tf.stack(errors)  # [num_fields]; report the first problem, as the python parser does
        first = tf.argmax(tf.cast(tf.strings.length(errors) > 0, tf.int32))
        return tuple(values) + (errors[first],)

    def wrong_field_count(line, path, line_number):
        error = tf.numpy_function(_python_line_error(schema), [line, path, line_number], tf.string, stateful=False)
        placeholders = tuple(
            tf.zeros([spec.length], _TF_DTYPES[spec.dtype]) if spec.dtype != "str" else tf.constant([""])
            for spec in fields
        )
        return placeholders + (tf.reshape(error, []),)

    @tf.autograph.experimental.do_not_convert
    def parse(path, line_number, line):
        parts = tf.strings.split(line, "\t")  # [num_fields] for a good line
        outputs = tf.cond(
            tf.equal(tf.size(parts), len(fields)),
            lambda: all_fields(parts, path, line_number),
            lambda: wrong_field_count(line, path, line_number),
        )
        values = {}
        for spec, value in zip(fields, outputs[:-1]):
            value.set_shape([spec.length])
            values[spec.name] = value
        return values, outputs[-1]

    return parse


_SCALAR_ARGS = (tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int64), tf.TensorSpec([], tf.string))
_CACHE = {}


def cached_line_parser(schema):
    """`make_line_parser` as a tf.function traced once per schema and process (reused by every shard)."""
    key = schema.to_string()
    if key not in _CACHE:
        _CACHE[key] = tf.function(make_line_parser(schema), input_signature=_SCALAR_ARGS, autograph=False)
    return _CACHE[key]


@tf.autograph.experimental.do_not_convert
def raise_on_error(values, error):
    """Passes `values` through, failing with the parser's message (InvalidArgumentError) when `error` is set."""
    check = tf.debugging.Assert(tf.equal(tf.strings.length(error), 0), [error])
    with tf.control_dependencies([check]):
        return {name: tf.identity(value) for name, value in values.items()}
