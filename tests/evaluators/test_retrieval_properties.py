"""Property tests: any result-file content parses or raises a clear ValueError, never anything else."""

import ast

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaleido_tf.evaluators.retrieval import score_retrieval
from kaleido_tf.evaluators.retrieval_format import (
    RetrievalResults,
    RetrievalResultWriter,
    _literal,
    read_retrieval_results,
)

FAST = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("retrieval_properties") / "results.txt"


def _read_or_value_error(path):
    """Reads `path`; a ValueError must name the file and a line number."""
    try:
        results = read_retrieval_results(path, progress=False)
    except ValueError as e:
        assert str(path) in str(e), str(e)
        return None
    assert isinstance(results, RetrievalResults)
    n = len(results)
    assert results.logits.shape == (n, 2) and results.labels.shape == (n,)
    assert set(np.unique(results.labels).tolist()) <= {0, 1}
    assert np.isfinite(results.logits).all()
    for kind in ("txt2img", "img2txt"):
        metrics = score_retrieval(results, kind)
        assert metrics["pairs"] == n
    return results


@FAST
@given(st.lists(st.text(), max_size=5))
def test_arbitrary_text_lines(scratch, lines):
    scratch.write_text("\n".join(lines), encoding="utf-8")
    _read_or_value_error(scratch)


@FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes(scratch, data):
    scratch.write_bytes(data)
    _read_or_value_error(scratch)


# Near-valid fields: lists of plausible and implausible items, so that parsing gets past the syntax.
_ID = st.one_of(st.text(max_size=6), st.binary(max_size=6), st.integers(-5, 5), st.floats(), st.none(), st.booleans())
_NUMBER = st.one_of(
    st.integers(-3, 3), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.text(max_size=2)
)


def _render(values, wrap):
    if wrap == "nested":
        return str([[v] for v in values])
    if wrap == "numpy":
        return "[" + ", ".join(f"np.float32({v!r})" for v in values) + "]"
    return str(values)


@st.composite
def _near_valid_line(draw):
    n = draw(st.integers(0, 4))
    fields = [
        str(draw(st.lists(_ID, min_size=n, max_size=n + 1))),
        str(draw(st.lists(_ID, min_size=n, max_size=n))),
        str(draw(st.lists(st.text(max_size=4), min_size=n, max_size=n))),
        _render(
            draw(st.lists(st.sampled_from([0, 1, 2, -1, True]), min_size=n, max_size=n + 1)),
            draw(st.sampled_from(["flat", "nested", "numpy"])),
        ),
        _render(
            draw(st.lists(_NUMBER, min_size=2 * n - 1 if n else 0, max_size=2 * n + 1)),
            draw(st.sampled_from(["flat", "nested", "numpy"])),
        ),
    ]
    extra = draw(st.sampled_from(["", "", "\001", "\001[]"]))
    return "\001".join(fields) + extra


@FAST
@given(st.lists(_near_valid_line(), min_size=1, max_size=3))
def test_near_valid_lines(scratch, lines):
    scratch.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _read_or_value_error(scratch)


_SAFE_ID = st.text(max_size=8)  # any unicode, quotes and control characters included
_FLOAT32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@FAST
@given(
    st.lists(
        st.lists(
            st.tuples(_SAFE_ID, _SAFE_ID, _SAFE_ID, st.integers(0, 1), _FLOAT32, _FLOAT32), min_size=1, max_size=4
        ),
        max_size=3,
    ),
    st.booleans(),
)
def test_writer_reader_round_trip(scratch, batches, bytes_ids):
    with RetrievalResultWriter(scratch) as writer:
        for batch in batches:
            ids = [[(p[i].encode("utf-8") if bytes_ids else p[i]) for p in batch] for i in range(3)]
            writer.write_batch(
                text_prod_ids=np.array(ids[0], dtype=object),
                image_prod_ids=np.array(ids[1], dtype=object),
                prod_img_ids=np.array(ids[2], dtype=object),
                labels=[[p[3]] for p in batch],
                nsp_logits=np.array([[p[4], p[5]] for p in batch], dtype=np.float32),
            )
    results = _read_or_value_error(scratch)
    assert results is not None
    pairs = [p for batch in batches for p in batch]
    assert results.text_prod_ids.tolist() == [p[0] for p in pairs]
    assert results.image_prod_ids.tolist() == [p[1] for p in pairs]
    assert results.prod_img_ids.tolist() == [p[2] for p in pairs]
    assert results.labels.tolist() == [p[3] for p in pairs]
    np.testing.assert_array_equal(
        results.logits, np.array([[p[4], p[5]] for p in pairs], dtype=np.float32).reshape(-1, 2)
    )


def _python_flat_list(src):
    """Reference: Python's own literal parser, nested lists flattened; None when not a list."""
    try:
        value = ast.literal_eval(src.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(value, (list, tuple)):
        return None
    flat, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        else:
            flat.append(item)
    return flat


@FAST
@given(
    st.one_of(
        st.text(alphabet="[]0123456789.eE+-, ", max_size=24),
        st.recursive(
            st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)),
            lambda inner: st.lists(inner, max_size=4),
            max_leaves=8,
        ).map(lambda v: str([v])),
    )
)
def test_number_fast_path_agrees_with_python_literals(src):
    expected = _python_flat_list(src)
    try:
        got = _literal(src, "logits", "f:1")
    except ValueError:
        assert expected is None, (src, expected)
        return
    assert expected is not None, src
    assert got == expected and [type(v) for v in got] == [type(v) for v in expected], src
