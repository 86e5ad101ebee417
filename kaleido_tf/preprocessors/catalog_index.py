"""A compact index of the whole catalog, built in one light pass that decodes no image.

It holds, per product, the byte offset of its record, a 64-bit hash of its id, its split and its
(category, subcategory) codes: about 60 bytes a product, so memory grows with the number of products
but never with images or features. The entries are sorted by (split, category, subcategory, id hash),
which makes "the products of this subcategory in this split" one contiguous range. Negatives for
image-text matching, camouflage donors and retrieval candidates are drawn from these ranges with a
per-product generator, so every draw is the same whichever shard makes it.
"""

import array
import dataclasses

import numpy as np
from tqdm import tqdm

from kaleido_tf.preprocessors.catalog import CatalogError
from kaleido_tf.preprocessors.hashing import SPLITS, hash_split, product_hash

_ENUMERATE_LIMIT = 4096  # ranges up to this size are enumerated instead of rejection-sampled


@dataclasses.dataclass
class SplitSettings:
    """How products without an explicit split are assigned one."""

    seed: int = 12345
    valid_fraction: float = 0.05
    test_fraction: float = 0.05

    def split_of(self, record):
        if record.split is not None:
            return record.split
        return hash_split(record.product_id, self.seed, self.valid_fraction, self.test_fraction)


def _subtract(ranges, hole):
    """Ranges minus one hole (a, b); all half-open."""
    a, b = hole
    out = []
    for s, e in ranges:
        if e <= a or s >= b:
            out.append((s, e))
            continue
        if s < a:
            out.append((s, a))
        if e > b:
            out.append((b, e))
    return out


class CatalogIndex:
    """Light index of a catalog; see the module docstring.

    Build it with `CatalogIndex.build(reader, split_settings, bad_records=...)`.
    """

    def __init__(
        self, reader, split_settings, categories, subcategories, arrays, catalog_errors, duplicates, num_records
    ):
        self.reader = reader
        self.split_settings = split_settings
        self.categories = categories  # sorted names; code = position
        self.subcategories = subcategories
        self.category_code = {name: i for i, name in enumerate(categories)}
        self.subcategory_code = {name: i for i, name in enumerate(subcategories)}
        self.catalog_errors = catalog_errors  # list of CatalogError
        self.duplicates = duplicates  # list of (line, offset, first_line)
        self.num_records = num_records
        for name, value in arrays.items():
            setattr(self, name, value)
        # self.hash, self.offset, self.line, self.split, self.cat, self.subcat, self.num_images, self.key
        ncat, nsub = max(len(categories), 1), max(len(subcategories), 1)
        self._ncat, self._nsub = ncat, nsub
        self._size = len(self.hash)

    # ------------------------------------------------------------------ construction

    @classmethod
    def build(cls, reader, split_settings, bad_records="error", progress=True):
        """Reads the catalog once; `bad_records` is "error" (raise at the first bad record) or "reject"."""
        if bad_records not in ("error", "reject"):
            raise ValueError(f"bad_records must be 'error' or 'reject', got {bad_records!r}")
        # Compact typed buffers: a few bytes per product while reading.
        hashes, offsets, lines = array.array("Q"), array.array("q"), array.array("q")
        splits, cats, subcats, nimages = array.array("b"), array.array("i"), array.array("i"), array.array("i")
        cat_codes, subcat_codes = {}, {}
        errors = []
        bar = tqdm(total=reader.file_size(), unit="B", unit_scale=True, desc="index catalog", disable=not progress)
        last = 0
        for item in reader.scan():
            if isinstance(item, CatalogError):
                if bad_records == "error":
                    bar.close()
                    raise item
                errors.append(item)
                continue
            rec = item
            hashes.append(product_hash(rec.product_id))
            offsets.append(rec.offset)
            lines.append(rec.line)
            splits.append(SPLITS.index(split_settings.split_of(rec)))
            cats.append(cat_codes.setdefault(rec.category, len(cat_codes)))
            subcats.append(subcat_codes.setdefault(rec.subcategory, len(subcat_codes)))
            nimages.append(len(rec.images))
            bar.update(rec.offset - last)
            last = rec.offset
        bar.update(reader.file_size() - last)
        bar.close()

        categories = sorted(cat_codes)
        subcategories = sorted(subcat_codes)
        cat_remap = np.zeros(max(len(cat_codes), 1), np.int32)
        for rank, name in enumerate(categories):
            cat_remap[cat_codes[name]] = rank
        sub_remap = np.zeros(max(len(subcat_codes), 1), np.int32)
        for rank, name in enumerate(subcategories):
            sub_remap[subcat_codes[name]] = rank

        hash_arr = np.frombuffer(hashes, np.uint64).copy() if hashes else np.zeros(0, np.uint64)
        line_arr = np.frombuffer(lines, np.int64).copy() if lines else np.zeros(0, np.int64)
        # Duplicated ids: keep the first occurrence in catalog order.
        dup_order = np.lexsort((line_arr, hash_arr))
        sorted_h = hash_arr[dup_order]
        is_dup_sorted = np.zeros(len(sorted_h), bool)
        if len(sorted_h) > 1:
            is_dup_sorted[1:] = sorted_h[1:] == sorted_h[:-1]
        duplicates = []
        keep = np.ones(len(hash_arr), bool)
        if is_dup_sorted.any():
            first_line = line_arr[dup_order].copy()
            for i in range(1, len(sorted_h)):
                if is_dup_sorted[i]:
                    first_line[i] = first_line[i - 1]
            for i in np.flatnonzero(is_dup_sorted):
                j = dup_order[i]
                keep[j] = False
                duplicates.append((int(line_arr[j]), int(offsets[j]), int(first_line[i])))
            duplicates.sort()

        arrays = {
            "hash": hash_arr[keep],
            "offset": np.asarray(offsets, np.int64)[keep],
            "line": line_arr[keep],
            "split": np.asarray(splits, np.int8)[keep],
            "cat": cat_remap[np.asarray(cats, np.int64)][keep] if len(cats) else np.zeros(0, np.int32),
            "subcat": sub_remap[np.asarray(subcats, np.int64)][keep] if len(subcats) else np.zeros(0, np.int32),
            "num_images": np.asarray(nimages, np.int32)[keep],
        }
        ncat, nsub = max(len(categories), 1), max(len(subcategories), 1)
        key = (arrays["split"].astype(np.int64) * ncat + arrays["cat"]) * nsub + arrays["subcat"]
        order = np.lexsort((arrays["hash"], key))
        arrays = {k: v[order] for k, v in arrays.items()}
        arrays["key"] = key[order]
        return cls(
            reader,
            split_settings,
            categories,
            subcategories,
            arrays,
            errors,
            duplicates,
            num_records=len(hashes) + len(errors),
        )

    # ------------------------------------------------------------------ lookups

    def __len__(self):
        return self._size

    def _key(self, split, cat, subcat):
        return (int(split) * self._ncat + int(cat)) * self._nsub + int(subcat)

    def _range_of_keys(self, lo_key, hi_key):
        """Positions whose key lies in [lo_key, hi_key)."""
        a = int(np.searchsorted(self.key, lo_key, side="left"))
        b = int(np.searchsorted(self.key, hi_key, side="left"))
        return a, b

    def locate(self, record):
        """Sorted position of a record, or None when it is a later duplicate (or not indexed)."""
        split = SPLITS.index(self.split_settings.split_of(record))
        cat = self.category_code.get(record.category)
        sub = self.subcategory_code.get(record.subcategory)
        if cat is None or sub is None:
            return None
        a, b = self.subcategory_block_at(split, cat, sub)
        h = np.uint64(product_hash(record.product_id))
        i = a + int(np.searchsorted(self.hash[a:b], h, side="left"))
        while i < b and self.hash[i] == h:
            if self.line[i] == record.line:
                return i
            i += 1
        return None

    def subcategory_block_at(self, split, cat, sub):
        k = self._key(split, cat, sub)
        return self._range_of_keys(k, k + 1)

    def subcategory_block(self, pos):
        """[a, b): products of the same split, category and subcategory as `pos`."""
        return self.subcategory_block_at(self.split[pos], self.cat[pos], self.subcat[pos])

    def category_block(self, pos):
        k = self._key(self.split[pos], self.cat[pos], 0)
        return self._range_of_keys(k, k + self._nsub)

    def split_block(self, pos=None, split=None):
        s = int(self.split[pos]) if split is None else int(split)
        k = self._key(s, 0, 0)
        return self._range_of_keys(k, k + self._ncat * self._nsub)

    def tiers(self, pos, kind):
        """Candidate tiers (lists of ranges) around `pos`, nearest first, without overlap.

        kind "similar": same subcategory, same category, same split, rest of the catalog
          (ITM negatives and retrieval candidates; all in the split first).
        kind "different": other subcategories of the split, other splits, same subcategory
          (camouflage donors, where a different subcategory is wanted).
        """
        full = [(0, self._size)]
        sub = self.subcategory_block(pos)
        cat = self.category_block(pos)
        spl = self.split_block(pos)
        if kind == "similar":
            return [
                ("subcategory", [sub]),
                ("category", _subtract([cat], sub)),
                ("split", _subtract([spl], cat)),
                ("catalog", _subtract(full, spl)),
            ]
        if kind == "different":
            return [
                ("split", _subtract([spl], sub)),
                ("catalog", _subtract(full, spl)),
                ("subcategory", [sub]),
            ]
        raise ValueError(f"unknown tier kind {kind!r}")

    def record_at(self, pos):
        """Reads the full record of the product at sorted position `pos`."""
        return self.reader.read_at(int(self.offset[pos]), int(self.line[pos]))

    def positions_in_split(self, split_name):
        a, b = self.split_block(split=SPLITS.index(split_name))
        return np.arange(a, b)

    # ------------------------------------------------------------------ sampling

    @staticmethod
    def iter_candidates(rng, ranges, exclude=None):
        """Yields distinct positions from `ranges` in a random order, skipping `exclude(pos)`.

        Small ranges are shuffled whole; large ones are drawn by rejection, so the cost does not
        grow with the catalog. The order depends only on `rng`.
        """
        ranges = [(int(a), int(b)) for a, b in ranges if b > a]
        total = sum(b - a for a, b in ranges)
        if total == 0:
            return

        def to_pos(u):
            for a, b in ranges:
                if u < b - a:
                    return a + u
                u -= b - a
            raise AssertionError("index out of ranges")

        if total <= _ENUMERATE_LIMIT:
            for u in rng.permutation(total):
                pos = to_pos(int(u))
                if exclude is None or not exclude(pos):
                    yield pos
            return
        seen = set()
        misses = 0
        while len(seen) < total and misses < 64:
            u = int(rng.integers(total))
            if u in seen:
                misses += 1
                continue
            seen.add(u)
            misses = 0
            pos = to_pos(u)
            if exclude is None or not exclude(pos):
                yield pos
        # Nearly exhausted by chance: walk the rest in a random rotation.
        start = int(rng.integers(total))
        for step in range(total):
            u = (start + step) % total
            if u in seen:
                continue
            seen.add(u)
            pos = to_pos(u)
            if exclude is None or not exclude(pos):
                yield pos
