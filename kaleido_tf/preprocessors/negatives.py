"""Other products for a product: ITM negative texts and camouflage donor crops, nearest tier first."""

import collections

import numpy as np

from kaleido_tf.preprocessors.kaleido_patches import LEVEL_OFFSETS, LEVEL_SIZES

MAX_TRIES_PER_TIER = 16
MIN_DONOR_DIFFERENCE = 4.0  # mean absolute pixel difference (0-255) of a donor crop
_DONORS_KEPT = 64


def same_text(a, b):
    """True when two texts are equal up to case and white space."""
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


class NegativeSampler:
    """Args:
    index: the CatalogIndex.
    images: the ImageSource (donor crops are cut from other products' images).
    itm_easy_negatives: share of ITM negatives searched first among the other categories.
    """

    def __init__(self, index, images, itm_easy_negatives=0.0):
        self.index = index
        self.images = images
        self.itm_easy_negatives = itm_easy_negatives
        self._donor_cache = collections.OrderedDict()

    def negative_text(self, pos, record, rng):
        """(record of another product with a different text, tier name), nearest tier first, or None.

        With probability `itm_easy_negatives` the search starts at the other categories of the split (an easy
        negative) instead of the same subcategory (a hard one).
        """
        tiers = self.index.tiers(pos, "similar")
        if self.itm_easy_negatives and rng.random() < self.itm_easy_negatives:
            tiers = [t for t in tiers if t[0] in ("split", "catalog")] + [
                t for t in tiers if t[0] not in ("split", "catalog")
            ]
        for tier, ranges in tiers:
            for other in self._candidates(pos, rng, ranges):
                if not same_text(other.text, record.text):
                    return other, tier
        return None

    def _candidates(self, pos, rng, ranges):
        """The records of at most MAX_TRIES_PER_TIER candidates drawn from `ranges`, never `pos` itself."""
        candidates = self.index.iter_candidates(rng, ranges, exclude=lambda p: p == pos)
        for tries, cand in enumerate(candidates, start=1):
            if tries > MAX_TRIES_PER_TIER:
                return
            yield self.index.record_at(cand)

    def _donor_patches(self, path):
        if path in self._donor_cache:
            self._donor_cache.move_to_end(path)
            return self._donor_cache[path]
        loaded, _ = self.images.load(path)
        patches = self.images.patches(loaded.image) if loaded is not None else None
        self._donor_cache[path] = patches
        if len(self._donor_cache) > _DONORS_KEPT:
            self._donor_cache.popitem(last=False)
        return patches

    def donor_crop(self, pos, rng, slot, own_base):
        """(crop, tier name): the same-slot level-3 crop of another product (another subcategory where possible).

        A donor crop must differ visibly from the crop it replaces (mean absolute pixel difference
        above `MIN_DONOR_DIFFERENCE`; two plain background cells would make the task unsolvable).
        When no candidate qualifies, the most different one seen is used.
        """
        s = LEVEL_OFFSETS[2] + slot
        own = own_base[s].astype(np.int16)
        best = None
        for tier, ranges in self.index.tiers(pos, "different"):
            for other in self._candidates(pos, rng, ranges):
                patches = self._donor_patches(other.images[int(rng.integers(len(other.images)))])
                if patches is None:
                    continue
                crop = patches.crop(s)
                difference = float(np.abs(crop.astype(np.int16) - own).mean())
                tier_name = "other subcategory" if tier != "subcategory" else "same subcategory"
                if difference > MIN_DONOR_DIFFERENCE:
                    return crop, tier_name
                if difference > 0 and (best is None or difference > best[0]):
                    best = (difference, crop, tier_name + " (similar crop)")
        if best is not None:
            return best[1], best[2]
        # No other product has a usable, different crop: take another level-3 cell of the same image.
        others = [i for i in range(LEVEL_SIZES[2]) if i != slot]
        differences = [float(np.abs(own_base[LEVEL_OFFSETS[2] + i].astype(np.int16) - own).mean()) for i in others]
        other_slot = others[int(np.argmax(differences))] if max(differences) > 0 else others[int(rng.integers(8))]
        return own_base[LEVEL_OFFSETS[2] + other_slot], "same image, other cell"
