"""rejected.tsv: one line for everything that was left out, with the reason.

Columns (tab-separated, with a header line):
  location    catalog file and line, "catalog.jsonl:17"
  product_id  the product (empty when the record could not be parsed)
  image       the image path as written in the catalog (empty for record-level problems)
  stage       "catalog" (bad or duplicate record), "image" (image rejected), "product" (no usable
              image left), "retrieval" (a retrieval query that could not be built)
  reason      one line
"""

import collections
import os

from kaleido_tf.utils.io import atomic_write

HEADER = ("location", "product_id", "image", "stage", "reason")


def _clean(value):
    return " ".join(str(value).split()) if value is not None else ""


def reason_kind(reason):
    """The reason without its details: "too small: 10x10, ..." -> "too small"."""
    return reason.split(":", 1)[0].split(" (", 1)[0].strip()


class RejectionLog:
    """Collects rejection rows; `write` saves them atomically as TSV."""

    def __init__(self):
        self.rows = []
        self._seen = set()

    def add(self, location, product_id, image, stage, reason):
        """Adds a row (an exact repeat of an earlier row is ignored)."""
        row = tuple(_clean(v) for v in (location, product_id, image, stage, reason))
        if row not in self._seen:
            self._seen.add(row)
            self.rows.append(row)

    def __len__(self):
        return len(self.rows)

    def counts(self):
        """{stage: {reason kind: count}}."""
        out = collections.defaultdict(collections.Counter)
        for row in self.rows:
            out[row[3]][reason_kind(row[4])] += 1
        return {stage: dict(sorted(c.items())) for stage, c in sorted(out.items())}

    def write(self, path):
        with atomic_write(path, "w") as f:
            f.write("\t".join(HEADER) + "\n")
            for row in self.rows:
                f.write("\t".join(row) + "\n")

    @classmethod
    def read(cls, path):
        log = cls()
        with open(path, encoding="utf-8") as f:
            header = f.readline().rstrip("\n").split("\t")
            if tuple(header) != HEADER:
                raise ValueError(f"{path}:1: not a rejection file (header {header})")
            for line_no, line in enumerate(f, 2):
                parts = line.rstrip("\n").split("\t")
                if len(parts) != len(HEADER):
                    raise ValueError(f"{path}:{line_no}: expected {len(HEADER)} columns, got {len(parts)}")
                log.add(*parts)
        return log

    @classmethod
    def merge(cls, paths):
        """Rows of several files, without exact duplicates, sorted by catalog line then image."""
        merged = cls()
        for path in paths:
            if os.path.exists(path):
                for row in cls.read(path).rows:
                    merged.add(*row)

        def key(row):
            loc = row[0].rsplit(":", 1)
            line = int(loc[1]) if len(loc) == 2 and loc[1].isdigit() else 0
            return (loc[0], line, row[2], row[3], row[4])

        merged.rows.sort(key=key)
        return merged
