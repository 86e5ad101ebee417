"""Token-patch alignments (the input of alignment-guided masking), read from JSONL.

One line per product image::

    {"product_id": "p000123", "image": 0,
     "alignments": [{"token": "collar", "level": 4, "patch": 1},
                    {"word": "striped", "level": 3, "patch": 4},
                    {"word": "pocket", "box": [0.31, 0.18, 0.41, 0.26]}]}

`image` (or `image_index`) is the index of the image in the product's `images` list; `token` (or
`word`) is a word or short phrase of the product text (matched after tokenisation, case as the
tokenizer folds it). An alignment names its kaleido patch either directly, with `level` (1..5) and
`patch` (the 0-based cell inside that level, row-major), or by a region, with `box`
[x1, y1, x2, y2] in fractions of the image (0..1, as word-region detectors and the demo catalog
give them). A box becomes one pair per level 3, 4 and 5: the cell of that level that overlaps the
box most (by area; ties go to the lower index), if any overlaps it at all. Alignments on levels 1 and
2 are accepted but not used. Several lines for the same product image are merged.
"""

import dataclasses
import json
import os

from kaleido_tf.utils.kaleido_levels import LEVEL_OFFSETS, LEVEL_SIZES


class AlignmentError(ValueError):
    """A bad line of the alignment file; the message names the file and the line."""


@dataclasses.dataclass(frozen=True)
class Alignment:
    word: str
    level: object = None  # 1..5 (None for a box alignment)
    patch: object = None  # index inside the level (None for a box alignment)
    box: object = None  # (x1, y1, x2, y2) in fractions of the image, or None


BOX_LEVELS = (3, 4, 5)


def resolve_alignments(alignments, image_size, cell_boxes):
    """Turns box alignments into (level, patch) ones for one image.

    Args:
      alignments: Alignment list (patch or box form).
      image_size: (width, height) of the image in pixels.
      cell_boxes: [55, 4] pixel boxes (x0, y0, x1, y1) of the kaleido cells in level order.
    Returns:
      Alignment list, all in patch form.
    """

    width, height = image_size
    out = []
    for a in alignments:
        if a.box is None:
            out.append(a)
            continue
        bx0, by0, bx1, by1 = a.box[0] * width, a.box[1] * height, a.box[2] * width, a.box[3] * height
        for level in BOX_LEVELS:
            start, size = LEVEL_OFFSETS[level - 1], LEVEL_SIZES[level - 1]
            best, best_area = None, 0.0
            for i in range(size):
                x0, y0, x1, y1 = cell_boxes[start + i]
                area = max(0.0, min(x1, bx1) - max(x0, bx0)) * max(0.0, min(y1, by1) - max(y0, by0))
                if area > best_area:
                    best, best_area = i, area
            if best is not None:
                out.append(Alignment(word=a.word, level=level, patch=best))
    return out


class AlignmentTable:
    """Alignments keyed by (product_id, image index).

    Args:
      path: the JSONL file.
      keep: optional predicate on product_id; other products are not kept (shards load only
        their own products, so memory follows the shard's share of the file).
    """

    def __init__(self, path, keep=None):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"alignment file not found: {self.path}")
        self._table = {}
        self.num_lines = 0
        with open(self.path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                self.num_lines += 1
                key, items = self._parse(line, line_no)
                if keep is not None and not keep(key[0]):
                    continue
                self._table.setdefault(key, []).extend(items)

    def _error(self, line_no, message):
        return AlignmentError(f"{self.path}:{line_no}: {message}")

    def _parse(self, line, line_no):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise self._error(line_no, f"invalid JSON: {e.msg} at column {e.colno}") from None
        if not isinstance(obj, dict):
            raise self._error(line_no, "expected a JSON object")
        pid = obj.get("product_id")
        if not isinstance(pid, (str, int)) or isinstance(pid, bool) or not str(pid).strip():
            raise self._error(line_no, "missing or empty field 'product_id'")
        image = obj.get("image", obj.get("image_index"))
        if not isinstance(image, int) or isinstance(image, bool) or image < 0:
            raise self._error(line_no, f"field 'image' (or 'image_index') must be an image index >= 0, got {image!r}")
        raw = obj.get("alignments")
        if not isinstance(raw, list):
            raise self._error(line_no, "field 'alignments' must be a list")
        items = []
        for i, a in enumerate(raw):
            if not isinstance(a, dict):
                raise self._error(line_no, f"alignments[{i}] must be an object")
            word = a.get("token", a.get("word"))
            if not isinstance(word, str) or not word.strip():
                raise self._error(line_no, f"alignments[{i}] needs a non-empty 'token' or 'word'")
            if "box" in a:
                box = a["box"]
                if (
                    not isinstance(box, list)
                    or len(box) != 4
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
                    or not (0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1)
                ):
                    raise self._error(
                        line_no,
                        f"alignments[{i}].box must be [x1, y1, x2, y2] with "
                        f"0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1, got {box!r}",
                    )
                items.append(Alignment(word=word.strip(), box=tuple(float(v) for v in box)))
                continue
            level, patch = a.get("level"), a.get("patch")
            if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 5:
                raise self._error(line_no, f"alignments[{i}].level must be 1..5, got {level!r}")
            size = LEVEL_SIZES[level - 1]
            if not isinstance(patch, int) or isinstance(patch, bool) or not 0 <= patch < size:
                raise self._error(
                    line_no, f"alignments[{i}].patch must be in 0..{size - 1} for level {level}, got {patch!r}"
                )
            items.append(Alignment(word=word.strip(), level=level, patch=patch))
        return (str(pid).strip(), image), items

    def get(self, product_id, image_index):
        return self._table.get((product_id, image_index), [])

    def __len__(self):
        return len(self._table)
