"""The retrieval result file: its format, a writer and a reader.

Retrieval runs the model in predict mode over prepared (text, image) pairs: every query comes with one
positive candidate and (typically) 100 negatives from the same subcategory. Each predicted batch is one
line of the result file, five fields separated by the byte ``\\001``::

    ['t1', 't1', ...] \\001 ['i1', 'i9', ...] \\001 ['p1', 'p9', ...] \\001 [1, 0, ...] \\001 [l0, l1, l0, l1, ...]

that is ``str(list text_prod_id)``, ``str(list image_prod_id)``, ``str(list prod_img_id)``,
``str(list labels)`` and ``str(flattened ITM logits)`` (two logits per pair: "no match", "match").
The scoring of the pairs is in `kaleido_tf.evaluators.retrieval`.
"""

import array
import ast
import contextlib
import dataclasses
import json
import math
import mmap
import os
import re
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from kaleido_tf.utils.io import KeepOrDiscard, atomic_write

FIELD_SEPARATOR = "\001"
RETRIEVAL_TYPES = ("txt2img", "img2txt")

_FIELD_NAMES = ("text_prod_id", "image_prod_id", "prod_img_id", "labels", "logits")
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class RetrievalRecord(NamedTuple):
    """One scored (query, candidate) pair."""

    text_prod_id: str
    image_prod_id: str
    prod_img_id: str
    label: int
    logits: Sequence[float]  # [2]: "no match", "match"


@dataclasses.dataclass(frozen=True)
class RetrievalResults:
    """All pairs of one or more result files, in file order, as parallel arrays."""

    text_prod_ids: np.ndarray  # [N] str
    image_prod_ids: np.ndarray  # [N] str
    prod_img_ids: np.ndarray  # [N] str
    labels: np.ndarray  # [N] int32, 0 or 1
    logits: np.ndarray  # [N, 2] float32

    def __len__(self):
        return int(self.labels.shape[0])

    def query_ids(self, type):  # pylint: disable=redefined-builtin
        """The query key of every pair: text ids for txt2img, image ids for img2txt."""
        check_type(type)
        return self.text_prod_ids if type == "txt2img" else self.image_prod_ids

    def records(self):
        """Iterates over the pairs as `RetrievalRecord`s."""
        for i in range(len(self)):
            yield RetrievalRecord(
                str(self.text_prod_ids[i]),
                str(self.image_prod_ids[i]),
                str(self.prod_img_ids[i]),
                int(self.labels[i]),
                tuple(float(x) for x in self.logits[i]),
            )

    @classmethod
    def from_records(cls, records):
        """Builds the arrays from an iterable of `RetrievalRecord` (or 5-tuples in the same order)."""
        text, image, prod, labels, logits = [], [], [], [], []
        for i, record in enumerate(records):
            if len(record) != 5:
                raise ValueError(f"record {i}: expected 5 fields {_FIELD_NAMES}, found {len(record)}")
            t, im, p, label, logit = record
            text.append(_ids_as_str([t], f"record {i} text_prod_id")[0])
            image.append(_ids_as_str([im], f"record {i} image_prod_id")[0])
            prod.append(_ids_as_str([p], f"record {i} prod_img_id")[0])
            labels.append(label)
            pair = np.asarray(logit, dtype=np.float32).reshape(-1)
            if pair.shape[0] != 2:
                raise ValueError(f"record {i}: logits must hold 2 values, found {pair.shape[0]}")
            logits.append(pair)
        return cls(
            text_prod_ids=_str_array(text),
            image_prod_ids=_str_array(image),
            prod_img_ids=_str_array(prod),
            labels=np.asarray(labels, dtype=np.int32).reshape(-1),
            logits=np.asarray(logits, dtype=np.float32).reshape(-1, 2),
        )


def _str_array(values):
    """[N] object array of str (a fixed-width numpy str dtype would drop trailing NUL characters)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def check_type(type):  # pylint: disable=redefined-builtin
    if type not in RETRIEVAL_TYPES:
        raise ValueError(f"retrieval type must be one of {RETRIEVAL_TYPES}, got {type!r}")


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


def _ids_as_str(values, name):
    """Flattens an id batch (list, numpy array of bytes/str, [B] or [B, 1]) to a list of str."""
    flat = np.asarray(values, dtype=object).reshape(-1)
    out = []
    for i, v in enumerate(flat):
        if isinstance(v, (bytes, np.bytes_)):
            try:
                v = bytes(v).decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{name}[{i}] is not valid UTF-8: {e}") from None
        elif isinstance(v, (bool, np.bool_)) or not isinstance(v, (str, int, np.integer)):
            raise ValueError(f"{name}[{i}] must be a string id, got {type(v).__name__}")
        out.append(str(v))
    return out


class RetrievalResultWriter(KeepOrDiscard):
    """Writes retrieval predictions in the result-file format, one line per batch.

    The file is written under a temporary name and renamed to `path` by `close()` (or on leaving a
    ``with`` block without error), so a reader never sees a partial file. Leaving the block with an
    exception, or calling `abort()`, discards the output.

        with RetrievalResultWriter("eval_txt2img_results.txt") as writer:
            for batch in batches:
                writer.write_batch(text_prod_ids=..., image_prod_ids=..., prod_img_ids=...,
                                   labels=..., nsp_logits=...)
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.batches = 0
        self.pairs = 0
        self._stack = contextlib.ExitStack()
        self._file = self._stack.enter_context(atomic_write(self.path, "w", encoding="utf-8"))
        self._closed = False

    def write_batch(self, text_prod_ids, image_prod_ids, prod_img_ids, labels, nsp_logits):
        """Appends one batch.

        Args:
          text_prod_ids, image_prod_ids, prod_img_ids: [B] (or [B, 1]) str or bytes ids.
          labels: [B] or [B, 1] integers, 1 for a matching pair and 0 otherwise; the shape is kept
            in the file (`[1, 0]` or `[[1], [0]]`).
          nsp_logits: [B, 2] ITM logits; written flattened as float32 values.
        """
        if self._closed:
            raise ValueError(f"{self.path}: writer is already closed")
        text = _ids_as_str(text_prod_ids, "text_prod_ids")
        image = _ids_as_str(image_prod_ids, "image_prod_ids")
        prod = _ids_as_str(prod_img_ids, "prod_img_ids")
        batch = len(text)
        if len(image) != batch or len(prod) != batch:
            raise ValueError(
                f"id batches differ in size: text_prod_ids {batch}, "
                f"image_prod_ids {len(image)}, prod_img_ids {len(prod)}"
            )
        labels = np.asarray(labels)
        if labels.size != batch:
            raise ValueError(f"labels hold {labels.size} values for {batch} pairs")
        if labels.size and not np.isin(labels, (0, 1)).all():
            raise ValueError(f"labels must be 0 or 1, got {np.unique(labels).tolist()}")
        logits = np.asarray(nsp_logits, dtype=np.float32).reshape(-1)  # [B * 2]
        if logits.shape[0] != 2 * batch:
            raise ValueError(f"nsp_logits hold {logits.shape[0]} values for {batch} pairs (expected {2 * batch})")
        fields = (str(text), str(image), str(prod), str(labels.astype(np.int64).tolist()), str(logits.tolist()))
        self._file.write(FIELD_SEPARATOR.join(fields) + "\n")
        self.batches += 1
        self.pairs += batch

    def close(self):
        """Finishes the file and renames it to `path`."""
        if not self._closed:
            self._closed = True
            self._stack.close()

    def abort(self):
        """Discards everything written; `path` is left as it was."""
        if not self._closed:
            self._closed = True
            try:
                self._stack.__exit__(ValueError, ValueError("aborted"), None)
            except ValueError:
                pass


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


class _NumpyReprToLiteral(ast.NodeTransformer):
    """Rewrites numpy-style scalar reprs into plain literals before `ast.literal_eval`.

    `np.float32(0.5)` / `numpy.int64(1)` / `np.str_('a')` / `np.bytes_(b'a')` become their argument,
    and the bare names `nan` / `inf` (as `str(float)` writes them) become float constants.
    """

    _NAMES = {"nan": math.nan, "inf": math.inf, "NaN": math.nan, "Infinity": math.inf}

    def visit_Call(self, node):  # pylint: disable=invalid-name
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id in ("np", "numpy")
            and len(node.args) == 1
            and not node.keywords
        ):
            return self.visit(node.args[0])
        return node  # left as is: literal_eval rejects it

    def visit_Name(self, node):  # pylint: disable=invalid-name
        if node.id in self._NAMES:
            return ast.copy_location(ast.Constant(self._NAMES[node.id]), node)
        return node


_PY2_LONG = re.compile(r"(?<=[0-9])[lL]\b")
_PLAIN_NUMBERS = re.compile(r"[\[\]\s,0-9.eE+\-]*")


def _literal(text, field, where):
    """Parses one field as a Python literal list; numpy reprs and Python 2 longs are accepted."""
    src = text.strip()
    if not src:
        raise ValueError(f"{where}: field {field} is empty")
    if _PLAIN_NUMBERS.fullmatch(src):
        # Fast path for number lists (labels, logits): within this character set JSON and Python
        # literals agree wherever JSON succeeds; anything else falls through to the full parser.
        try:
            value = json.loads(src)
        except (ValueError, RecursionError):
            value = None
        if isinstance(value, list):
            return _flatten(value)
    tree = None
    for candidate in (src, _PY2_LONG.sub("", src)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. SyntaxWarning for odd escapes inside ids
                tree = ast.parse(candidate, mode="eval")
            break
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            continue
    if tree is None:
        raise ValueError(f"{where}: field {field} is not a Python literal list: {_clip(src)}")
    try:
        try:
            value = ast.literal_eval(tree.body)
        except ValueError:  # numpy reprs or nan/inf names: rewrite them, then try again
            value = ast.literal_eval(_NumpyReprToLiteral().visit(tree.body))
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError, OverflowError) as e:
        raise ValueError(f"{where}: field {field} holds an unparsable value ({e}): {_clip(src)}") from None
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{where}: field {field} must be a list, found {type(value).__name__}: {_clip(src)}")
    return _flatten(value)


def _flatten(value):
    """Flattens nested lists / tuples into one list, iteratively (no recursion limit)."""
    if not any(isinstance(item, (list, tuple)) for item in value):
        return list(value)
    out, stack = [], [iter(value)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, (list, tuple)):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out


def _clip(text, limit=80):
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _parse_field(text, field, where, parse_item):
    """The list in field `field` of a line, each item through `parse_item` (a ValueError of an item names it)."""
    out = []
    for i, v in enumerate(_literal(text, field, where)):
        try:
            out.append(parse_item(v))
        except ValueError as e:
            raise ValueError(f"{where}: field {field} item {i} {e}") from None
    return out


def _id_item(v):
    if isinstance(v, bytes):
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"is not valid UTF-8: {v!r}") from None
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise ValueError(f"must be a string id, found {type(v).__name__} {v!r}")
    return str(v)


def _label_item(v):
    if not isinstance(v, int) or v not in (0, 1):  # bool is an int: True/False accepted
        raise ValueError(f"must be 0 or 1, found {v!r}")
    return int(v)


def _logit_item(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"must be a number, found {v!r}")
    try:
        f = float(v)
    except OverflowError:
        f = math.inf
    if not math.isfinite(f) or abs(f) > _FLOAT32_MAX:
        raise ValueError(f"is not a finite float32: {v!r}")
    return f


def _parse_line(text, where):
    fields = text.split(FIELD_SEPARATOR)
    if len(fields) != 5:
        raise ValueError(
            f"{where}: expected 5 fields separated by \\001 ({', '.join(_FIELD_NAMES)}), found {len(fields)}"
        )
    text_ids = _parse_field(fields[0], "text_prod_id", where, _id_item)
    image_ids = _parse_field(fields[1], "image_prod_id", where, _id_item)
    prod_ids = _parse_field(fields[2], "prod_img_id", where, _id_item)
    labels = _parse_field(fields[3], "labels", where, _label_item)
    logits = _parse_field(fields[4], "logits", where, _logit_item)
    n = len(text_ids)
    if len(image_ids) != n or len(prod_ids) != n or len(labels) != n:
        raise ValueError(
            f"{where}: lists of different lengths: text_prod_id {n}, image_prod_id "
            f"{len(image_ids)}, prod_img_id {len(prod_ids)}, labels {len(labels)}"
        )
    if len(logits) != 2 * n:
        raise ValueError(f"{where}: {len(logits)} logits for {n} ids (expected 2 x {n} = {2 * n})")
    return text_ids, image_ids, prod_ids, labels, logits


# A line longer than this is parsed as a stream of fields and items (see `_parse_long_line`); shorter lines,
# and any long line the streaming parser does not fully understand, go through `_parse_line`.
_LONG_LINE = 1 << 16
_WINDOW = 1 << 20  # bytes of a field scanned at a time
_MAX_ITEM = 1 << 16  # an item longer than this leaves the line to `_parse_line`
# One item of a list field with the whitespace before it: a bracket, a comma, a string literal (u/b prefix),
# or a JSON number (where JSON parses, Python literals agree).
_ITEM = re.compile(
    rb"[ \t\f]*(?:([\[\]])|(,)|([uUbB]?)(?:'((?:[^'\\\n]|\\.)*)'|\"((?:[^\"\\\n]|\\.)*)\")"
    rb"|(-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?))"
)
_OPEN, _AFTER_COMMA, _AFTER_ITEM = 0, 1, 2


class _NotStreamable(Exception):
    """The line holds something the streaming parser leaves to `_parse_line` (which names any error)."""


def _field_items(buffer, start, end, kind, cache):
    """The items of the list field `buffer[start:end]`, scanned `_WINDOW` bytes at a time; ids are shared
    through `cache`. Raises `_NotStreamable` for anything but a well-formed list of plain items."""
    out = array.array("i") if kind == "labels" else array.array("d") if kind == "logits" else []
    state, depth, started, carry, pos = None, 0, False, b"", start
    while True:
        window = carry + buffer[pos : min(pos + _WINDOW, end)]
        pos = min(pos + _WINDOW, end)
        final = pos >= end
        i = 0
        while True:
            match = _ITEM.match(window, i)
            if match is None or (match.end() == len(window) and not final):
                break  # the item may go on in the next window
            i = match.end()
            bracket, comma, prefix, single, double, number, fraction, exponent = match.groups()
            if depth == 0 and started:
                raise _NotStreamable  # something after the closing bracket
            if bracket == b"[":
                if state == _AFTER_ITEM:
                    raise _NotStreamable
                depth, started, state = depth + 1, True, _OPEN
            elif not started:
                raise _NotStreamable  # not a list
            elif bracket == b"]":  # after "[", an item or a trailing comma, as in Python
                depth, state = depth - 1, _AFTER_ITEM
            elif comma:
                if state != _AFTER_ITEM:
                    raise _NotStreamable
                state = _AFTER_COMMA
            else:
                if state == _AFTER_ITEM:
                    raise _NotStreamable
                state = _AFTER_ITEM
                item = _item(kind, prefix, single if single is not None else double, number, fraction or exponent)
                out.append(cache.setdefault(item, item) if kind == "ids" else item)
        carry = window[i:]
        if final:
            if carry.strip(b" \t\f") or depth != 0 or not started:
                raise _NotStreamable
            return out
        if len(carry) > _MAX_ITEM:
            raise _NotStreamable


def _item(kind, prefix, text, number, is_float):
    if kind == "ids":
        if number is not None:
            if is_float:
                raise _NotStreamable
            return str(int(number))
        if b"\\" in text or (prefix in (b"b", b"B") and not text.isascii()):
            raise _NotStreamable
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError:
            raise _NotStreamable from None
    if number is None:
        raise _NotStreamable
    if kind == "labels":
        if is_float or number not in (b"0", b"1"):
            raise _NotStreamable
        return int(number)
    value = float(number)
    if not math.isfinite(value) or abs(value) > _FLOAT32_MAX:
        raise _NotStreamable
    return value


def _parse_long_line(buffer, start, end, cache):
    """One long line `buffer[start:end]` (no newline) parsed field by field, item by item, without a copy of
    the line: (text ids, image ids, prod ids, labels, logits), ids shared through `cache`."""
    bounds, pos = [], start
    for _ in range(4):
        sep = buffer.find(FIELD_SEPARATOR.encode(), pos, end)
        if sep < 0:
            raise _NotStreamable
        bounds.append((pos, sep))
        pos = sep + 1
    if buffer.find(FIELD_SEPARATOR.encode(), pos, end) >= 0:
        raise _NotStreamable
    bounds.append((pos, end))
    kinds = ("ids", "ids", "ids", "labels", "logits")
    fields = [_field_items(buffer, a, b, kind, cache) for (a, b), kind in zip(bounds, kinds)]
    n = len(fields[0])
    if any(len(f) != n for f in fields[1:4]) or len(fields[4]) != 2 * n:
        raise _NotStreamable
    return fields


def _read_line(raw, where):
    """One line's bytes (newline included or not) -> its parsed fields, or None for a blank line."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{where}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    line = line.rstrip("\n").rstrip("\r")
    if not line.strip():
        return None
    return _parse_line(line, where)


def _lines(buffer, size):
    """(start, end) of each line of `buffer` (end: at the newline, or the end of the file)."""
    pos = 0
    while pos < size:
        newline = buffer.find(b"\n", pos)
        end = size if newline < 0 else newline
        yield pos, end
        pos = end + 1


def read_retrieval_results(paths, progress=None):
    """Reads one result file (or a list of them, concatenated in order) into `RetrievalResults`.

    Accepts the files of either Python generation: str ids (`['a', 'b']`, `[u'a']`), bytes ids
    (`[b'a']`), numpy scalar reprs (`np.float32(0.5)`), Python 2 longs (`1L`), and labels flat
    (`[1, 0]`) or nested (`[[1], [0]]`). Blank lines are skipped. Values are parsed with
    `ast.literal_eval`, never executed.

    Memory: the file is memory-mapped and a long line (a whole prediction in one line, as the original
    writes a single large batch) is parsed item by item, a window at a time, so the peak stays near the
    size of the pairs themselves (shared id strings, int32 labels, float64 logits; about 1.5 times the
    file's size), not the 20-odd times of parsing the line at once. Short lines and unusual ones (numpy
    reprs, escapes, errors) are parsed whole.

    Args:
      paths: a path or a sequence of paths.
      progress: show a tqdm progress bar; None shows it only on a terminal.

    Raises:
      ValueError: a malformed line, naming the file, the line number and what is wrong.
      OSError: a file cannot be read.
    """
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    text, image, prod, labels, logits = [], [], [], array.array("i"), array.array("d")
    cache = {}
    for path in paths:
        path = os.fspath(path)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        total = os.path.getsize(path)
        with (
            open(path, "rb") as f,
            mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if total else contextlib.nullcontext(b"") as buffer,
            tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc="reading results",
                disable=None if progress is None else not progress,
                leave=False,
            ) as bar,
        ):
            for lineno, (start, end) in enumerate(_lines(buffer, total), start=1):
                bar.update(end + 1 - start)
                where = f"{path}:{lineno}"
                parsed = None
                if end - start > _LONG_LINE:
                    stop = end
                    while stop > start and buffer[stop - 1 : stop] == b"\r":
                        stop -= 1
                    try:
                        parsed = _parse_long_line(buffer, start, stop, cache)
                    except _NotStreamable:
                        parsed = None
                if parsed is None:
                    parsed = _read_line(buffer[start:end], where)
                    if parsed is None:
                        continue
                t, im, p, lab, lg = parsed
                text.extend(t)
                image.extend(im)
                prod.extend(p)
                labels.extend(lab)
                logits.extend(lg)
                del parsed, t, im, p, lab, lg
    columns = {}
    for name, ids in (("text_prod_ids", text), ("image_prod_ids", image), ("prod_img_ids", prod)):
        columns[name] = _str_array(ids)
        ids.clear()  # one list at a time beside its array
    return RetrievalResults(
        **columns,
        labels=np.frombuffer(labels, dtype=np.int32).copy(),
        logits=np.frombuffer(logits, dtype=np.float64).astype(np.float32).reshape(-1, 2),
    )
