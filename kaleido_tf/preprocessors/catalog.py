"""Streaming reader for product catalogs (JSONL or CSV).

JSONL, one product per line::

    {"product_id": "p000123", "images": ["images/p000123_0.jpg"], "text": "...",
     "category": "tops", "subcategory": "t-shirts", "split": "train"}

CSV with the header `product_id,images,text,category,subcategory[,split]`, the image paths
separated by `|`. Quoted CSV fields may span lines. Image paths are relative to the catalog file's
directory unless absolute. `split` is optional (train/valid/test); keys or columns beyond these are
ignored. Blank lines are skipped.

The reader streams: it never holds more than one record, and it remembers the byte offset of each
record so that a later step can read one record again (`read_at`) without keeping the catalog in
memory. Every problem is reported as a `CatalogError` naming the file and the line. A record may hold
at most `MAX_RECORD_BYTES`: a longer one (in CSV, usually a quote that is never closed, which would
otherwise swallow the rest of the file) is an error at its first line, and reading goes on at the
line after it.
"""

import csv
import dataclasses
import io
import json
import os

from kaleido_tf.preprocessors.hashing import SPLITS

REQUIRED_FIELDS = ("product_id", "images", "text", "category", "subcategory")
MAX_RECORD_BYTES = 1 << 20  # 1 MiB: far more than any product record needs
_CSV_IMAGE_SEPARATOR = "|"


class CatalogError(ValueError):
    """A catalog record that cannot be used; the message names the file, the line and the field."""

    def __init__(self, path, line, message):
        self.path = os.fspath(path)
        self.line = line
        self.reason = message
        super().__init__(f"{self.path}:{line}: {message}")


@dataclasses.dataclass(frozen=True)
class CatalogRecord:
    """One product. `images` are resolved paths; `raw_images` are the paths as written."""

    product_id: str
    images: tuple
    raw_images: tuple
    text: str
    category: str
    subcategory: str
    split: object  # str or None
    line: int  # 1-based line where the record starts
    offset: int  # byte offset of that line

    def image_id(self, index):
        """Identifier of the product's image `index`, as written to `prod_img_id`."""
        return f"{self.product_id}_{index}"


def _is_json_catalog(path):
    name = os.fspath(path).lower()
    if name.endswith((".jsonl", ".json", ".ndjson", ".jsonl.txt")):
        return True
    if name.endswith((".csv", ".tsv.csv")):
        return False
    raise ValueError(f"{path}: catalog format not recognised from the file name (use .jsonl or .csv)")


class CatalogReader:
    """Reads a JSONL or CSV catalog record by record.

    Args:
      path: the catalog file (`.jsonl`/`.json`/`.ndjson` or `.csv`).
      image_root: directory that relative image paths are resolved against; the catalog file's
        directory when None.
    """

    def __init__(self, path, image_root=None):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"catalog file not found: {self.path}")
        self.is_jsonl = _is_json_catalog(self.path)
        self.image_root = os.path.abspath(image_root or os.path.dirname(os.path.abspath(self.path)))
        self._header = None
        self._handle = None
        if not self.is_jsonl:
            self._header = self._read_csv_header()

    # ------------------------------------------------------------------ public API

    def __iter__(self):
        """Yields CatalogRecord objects; raises CatalogError at the first bad record."""
        for item in self.scan():
            if isinstance(item, CatalogError):
                raise item
            yield item

    def scan(self):
        """Yields a CatalogRecord, or a CatalogError (not raised) for each bad record."""
        for line, offset, raw in self._raw_records():
            if isinstance(raw, CatalogError):
                yield raw
                continue
            try:
                yield self._parse(raw, line, offset)
            except CatalogError as e:
                yield e

    def read_at(self, offset, line):
        """Reads the record that starts at byte `offset` (its line number is `line`)."""
        if self._handle is None:
            self._handle = open(self.path, "rb")
        self._handle.seek(offset)
        raw, problem = self._read_record(self._handle)
        if problem:
            raise CatalogError(self.path, line, problem)
        return self._parse(raw, line, offset)

    def close(self):
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def file_size(self):
        return os.path.getsize(self.path)

    # ------------------------------------------------------------------ raw records

    def _read_record(self, f):
        """Reads one record at the position of binary file `f`: (raw bytes, problem or None).

        A record is one line (JSONL), or lines up to one that closes every quote (CSV). The raw bytes are
        b"" at the end of the file; a problem says why the record is unusable (too long, a quote never
        closed).
        """
        raw = bytearray()
        open_quote = False
        while True:
            chunk = f.readline(MAX_RECORD_BYTES + 1 - len(raw))
            if not chunk:
                problem = None
                if open_quote:
                    problem = "a quoted field is never closed (an unbalanced '\"') before the end of the file"
                return bytes(raw), problem
            raw += chunk
            if not self.is_jsonl and chunk.count(b'"') % 2:
                open_quote = not open_quote
            if len(raw) > MAX_RECORD_BYTES:
                problem = f"the record is longer than {MAX_RECORD_BYTES} bytes"
                if open_quote:
                    problem += " (a quoted field is never closed: an unbalanced '\"'?)"
                return bytes(raw), problem
            if chunk.endswith(b"\n") and not open_quote:
                return bytes(raw), None

    def _raw_records(self):
        """Yields (line number, byte offset, raw bytes or a CatalogError) for every non-blank record."""
        with open(self.path, "rb") as f:
            line_no, offset = 1, 0
            if not self.is_jsonl:  # skip the header record (_read_csv_header has checked it)
                raw, _ = self._read_record(f)
                line_no, offset = line_no + raw.count(b"\n"), len(raw)
            while True:
                raw, problem = self._read_record(f)
                if not raw:
                    return
                if problem:
                    yield line_no, offset, CatalogError(self.path, line_no, problem)
                    # Go on at the line after the one where the bad record starts.
                    first = raw.find(b"\n") + 1
                    if first == 0:  # one line longer than the limit: skip to its end
                        first = len(raw)
                        while True:
                            rest = f.readline(1 << 16)
                            first += len(rest)
                            if not rest or rest.endswith(b"\n"):
                                break
                    line_no, offset = line_no + 1, offset + first
                    f.seek(offset)
                    continue
                if raw.strip():
                    yield line_no, offset, raw
                line_no, offset = line_no + raw.count(b"\n"), offset + len(raw)

    def _read_csv_header(self):
        with open(self.path, "rb") as f:
            raw, problem = self._read_record(f)
        if problem:
            raise CatalogError(self.path, 1, f"CSV header: {problem}")
        text = raw.decode("utf-8-sig", errors="strict").strip("\r\n")
        if not text.strip():
            raise CatalogError(
                self.path, 1, "empty CSV file: expected the header product_id,images,text,category,subcategory[,split]"
            )
        header = [h.strip() for h in next(csv.reader(io.StringIO(text)))]
        missing = [name for name in REQUIRED_FIELDS if name not in header]
        if missing:
            raise CatalogError(self.path, 1, f"CSV header lacks column(s) {missing}; got {header}")
        if len(set(header)) != len(header):
            raise CatalogError(self.path, 1, f"CSV header repeats a column: {header}")
        return header

    # ------------------------------------------------------------------ parsing

    def _parse(self, raw, line, offset):
        try:
            text = raw.decode("utf-8-sig" if offset == 0 else "utf-8")
        except UnicodeDecodeError as e:
            raise CatalogError(self.path, line, f"not valid UTF-8 ({e})") from None
        if self.is_jsonl:
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise CatalogError(self.path, line, f"invalid JSON: {e.msg} at column {e.colno}") from None
            if not isinstance(obj, dict):
                raise CatalogError(self.path, line, f"expected a JSON object, got {type(obj).__name__}")
            images = obj.get("images")
            if images is not None and not isinstance(images, list):
                raise CatalogError(
                    self.path, line, f"field 'images' must be a list of paths, got {type(images).__name__}"
                )
        else:
            rows = list(csv.reader(io.StringIO(text)))
            if len(rows) != 1:
                raise CatalogError(self.path, line, "could not parse the CSV record")
            row = rows[0]
            if len(row) != len(self._header):
                raise CatalogError(
                    self.path,
                    line,
                    f"expected {len(self._header)} CSV columns ({','.join(self._header)}), got {len(row)}",
                )
            obj = dict(zip(self._header, row))
            images = obj.get("images")
            if images is not None:
                images = [p.strip() for p in images.split(_CSV_IMAGE_SEPARATOR)]
                images = [p for p in images if p]
            obj["images"] = images
        return self._validate(obj, line, offset)

    def _string_field(self, obj, name, line):
        value = obj.get(name)
        if value is None:
            raise CatalogError(self.path, line, f"missing field '{name}'")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise CatalogError(self.path, line, f"field '{name}' must be a string, got {type(value).__name__}")
        value = str(value).strip()
        if not value:
            raise CatalogError(self.path, line, f"field '{name}' is empty")
        return value

    def _validate(self, obj, line, offset):
        product_id = self._string_field(obj, "product_id", line)
        if any(c in product_id for c in "\t\r\n\x01"):
            raise CatalogError(self.path, line, f"field 'product_id' contains a tab, newline or \\x01: {product_id!r}")
        text = self._string_field(obj, "text", line)
        category = self._string_field(obj, "category", line)
        subcategory = self._string_field(obj, "subcategory", line)
        images = obj.get("images")
        if not images:
            raise CatalogError(self.path, line, "field 'images' is missing or empty")
        raw_images = []
        for i, p in enumerate(images):
            if not isinstance(p, str) or not p.strip():
                raise CatalogError(self.path, line, f"field 'images'[{i}] must be a non-empty path string")
            raw_images.append(p.strip())
        resolved = tuple(
            p if os.path.isabs(p) else os.path.normpath(os.path.join(self.image_root, p)) for p in raw_images
        )
        split = obj.get("split")
        if split is not None and not (isinstance(split, str) and not split.strip()):
            if not isinstance(split, str) or split.strip() not in SPLITS:
                raise CatalogError(
                    self.path, line, f"field 'split' must be one of {list(SPLITS)} or absent, got {split!r}"
                )
            split = split.strip()
        else:
            split = None
        return CatalogRecord(
            product_id=product_id,
            images=resolved,
            raw_images=tuple(raw_images),
            text=text,
            category=category,
            subcategory=subcategory,
            split=split,
            line=line,
            offset=offset,
        )
