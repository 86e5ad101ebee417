"""Pure-python parser for one line of a bundle data file (TSV in schema order).

Rules (those of the original reader, with strict checks):
- fields are separated by tabs; a line must hold exactly one field per schema item; a trailing "\\r" is
  ignored;
- an `int` or `float` field holds `length` comma-separated numbers (spaces around a number are allowed,
  empty values are not); a `float` field may instead hold base64 (standard or URL-safe alphabet, padding
  optional) of `length` raw little-endian float32 values;
- a `str` field is kept as bytes, unchanged;
- NaN and Inf are errors in float fields, and int values must fit in int64.

Every problem raises `DataError` naming the source ("path:line"), the field and what was expected. The
parser is shared by the bundle reader (inside tf.data) and the TFRecord converter, so both accept and
reject exactly the same lines.
"""

import base64
import binascii
import re
import warnings

import numpy as np

from kaleido_tf.datasets.errors import DataError

_INT_RE = re.compile(rb"[+-]?[0-9]+\Z")
_FLOAT_RE = re.compile(
    rb"[+-]?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?"
    rb"|nan|inf|infinity)\Z",
    re.IGNORECASE,
)
_INT64_MIN, _INT64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max
_WHITESPACE = (b" ", b"\t", b"\r", b"\n", b"\x0b", b"\x0c")


def _fromstring_is_strict():
    """True when numpy's text `fromstring` raises on unparsable input (numpy 2); else the fast path is off."""

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            np.fromstring(b"1,2x", dtype=np.int64, sep=",")
        except ValueError:
            return True
    return False


_FAST_PATH = _fromstring_is_strict()


def _preview(token, limit=40):
    # No quotes: the message may pass through tf.debugging.Assert, which escapes them.
    text = token.decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit] + "..."


def _fast_numbers(text, length, np_dtype):
    """C-speed parse of a clean comma list; None whenever anything looks unusual (the slow path decides)."""
    if text.count(b",") != length - 1 or not text or text[:1] == b"," or text[-1:] == b"," or b",," in text:
        return None
    for char in _WHITESPACE:
        if char in text:
            return None
    try:
        values = np.fromstring(text, dtype=np_dtype, sep=",")
    except ValueError:
        return None
    if values.size != length:
        return None
    if np_dtype is np.int64:
        if (values == _INT64_MAX).any() or (values == _INT64_MIN).any():
            return None  # possibly clamped on overflow: let the slow path check exactly
    elif not np.isfinite(values).all():
        return None
    return values


def _decode_base64_floats(token, length):
    """float32 values from base64 text, or None when it is not base64 of exactly `length` float32 values."""
    data = token.strip()
    if b"-" in data or b"_" in data:
        data = data.replace(b"-", b"+").replace(b"_", b"/")
    data += b"=" * (-len(data) % 4)
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 4 * length:
        return None
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def _check_finite(values, spec, source, origin=""):
    finite = np.isfinite(values)
    if not finite.all():
        index = int(np.argmin(finite))
        kind = "NaN" if np.isnan(values[index]) else "Inf"
        raise DataError(
            f"{source}: field {spec.name}: value {index + 1} of {spec.length}{origin} is {kind}; "
            f"NaN and Inf are not allowed in float fields",
            source,
            spec.name,
        )


def _slow_numbers(text, spec, source):
    """Exact, value-by-value parse with precise error messages."""
    tokens = text.split(b",")
    is_float = spec.dtype == "float"
    if is_float and len(tokens) == 1 and not _FLOAT_RE.match(tokens[0].strip()):
        values = _decode_base64_floats(tokens[0], spec.length)
        if values is not None:
            _check_finite(values, spec, source, origin=" (base64)")
            return values
        if spec.length > 1 and tokens[0].strip():
            raise DataError(
                f"{source}: field {spec.name}: expected {spec.length} comma-separated numbers or "
                f"base64 of {spec.length} float32 values, found: {_preview(tokens[0])} (not a number, "
                f"and not base64 of {4 * spec.length} bytes)",
                source,
                spec.name,
            )
    if len(tokens) != spec.length:
        raise DataError(
            f"{source}: field {spec.name}: wrong list length: expected {spec.length} values, found {len(tokens)}",
            source,
            spec.name,
        )
    pattern = _FLOAT_RE if is_float else _INT_RE
    kind = "a number" if is_float else "an integer"
    stripped = []
    for index, token in enumerate(tokens):
        token = token.strip()
        if not token:
            raise DataError(
                f"{source}: field {spec.name}: value {index + 1} of {spec.length} is empty", source, spec.name
            )
        if not pattern.match(token):
            raise DataError(
                f"{source}: field {spec.name}: value {index + 1} of {spec.length} ({_preview(token)}) is not {kind}",
                source,
                spec.name,
            )
        stripped.append(token)
    if is_float:
        values = np.array([float(token) for token in stripped], dtype=np.float64)
        with np.errstate(over="ignore"):
            values32 = values.astype(np.float32)
        _check_finite(values32, spec, source)
        return values32
    numbers = []
    for index, token in enumerate(stripped):
        # More than 19 significant digits never fit (and python refuses int() of over 4300 digits).
        number = int(token) if len(token.lstrip(b"+-").lstrip(b"0")) <= 19 else None
        if number is None or not _INT64_MIN <= number <= _INT64_MAX:
            raise DataError(
                f"{source}: field {spec.name}: value {index + 1} of {spec.length} "
                f"({_preview(token)}) does not fit in int64",
                source,
                spec.name,
            )
        numbers.append(number)
    return np.array(numbers, dtype=np.int64)


def parse_field(text, spec, source="<input>"):
    """Parses one field's text (bytes) into a numpy array of shape [spec.length] (object array for str)."""
    if spec.dtype == "str":
        return np.array([bytes(text)], dtype=object)
    if _FAST_PATH:
        values = _fast_numbers(text, spec.length, np.int64 if spec.dtype == "int" else np.float32)
        if values is not None:
            return values
    return _slow_numbers(text, spec, source)


def parse_tsv_line(line, schema, source="<input>"):
    """Parses one TSV line into {field name: numpy array} following `schema`.

    Args:
      line: str or bytes, one line (a trailing "\\n" / "\\r\\n" is ignored).
      schema: a `Schema`.
      source: where the line comes from, "path:line_number", used in error messages.

    Returns:
      dict name -> np.ndarray: int64 [length], float32 [length], or object [1] holding bytes for str fields.

    Raises:
      DataError: naming the source, the field and the problem.
    """
    if isinstance(line, str):
        line = line.encode("utf-8")
    elif not isinstance(line, bytes):
        line = bytes(line)
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    parts = line.split(b"\t")
    if len(parts) != len(schema):
        empty = " (the line is empty)" if not line else ""
        raise DataError(
            f"{source}: wrong field count: expected {len(schema)} tab-separated fields "
            f"({schema.fields[0].name} ... {schema.fields[-1].name}), found {len(parts)}{empty}",
            source,
        )
    return {spec.name: parse_field(text, spec, source) for spec, text in zip(schema.fields, parts)}
