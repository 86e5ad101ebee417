"""The five kaleido self-supervised tasks: what is done to the crops and which label results.

- Rotation (level 1): the crop is turned counter-clockwise by k * 90 degrees, k in 0..3; label k.
  `np.rot90(crop, -k)` turns it back.
- Jigsaw (level 2): the four crops are shown in the order of permutation `p` of `JIGSAW_PERMUTATIONS`
  (the 24 permutations of (0, 1, 2, 3) in lexicographic order: 0 = (0,1,2,3), 1 = (0,1,3,2),
  2 = (0,2,1,3), ..., 23 = (3,2,1,0)); label p. Slot i shows the crop of grid cell perm[i] while
  the positions stay those of slot i (the grid cell order), so the model cannot read the answer off
  the positions. Putting slot i back at index perm[i] restores the original order.
- Camouflage (level 3): the crop at slot s (0..8) is replaced by the crop at the same slot of
  another product's image (of a different subcategory where possible); label s. With the
  "none replaced" class enabled there are 10 labels and label 9 (drawn with probability 1/10)
  means that no crop was replaced.
- Grey (level 4): `num_grey` (2) crops are converted to grey (ITU-R 601 luma replicated over the
  three channels) before feature extraction; their ids (0..15, ascending) go to `img_grey_lm_ids`
  and the features of the original colour crops to `img_grey_mask_gt`.
- Blank (level 5): `num_blank` (3) ids (0..24, ascending) go to `img_blank_lm_ids`; the features are
  kept, and the model zeroes them at training time.
"""

import dataclasses
import itertools

import numpy as np

from kaleido_tf.utils.kaleido_levels import LEVEL_SIZES

JIGSAW_PERMUTATIONS = tuple(itertools.permutations(range(4)))  # 24, lexicographic
NUM_ROTATIONS = 4


def rotate_crop(crop, k):
    """Turns an [S, S, C] crop counter-clockwise by k * 90 degrees."""
    return np.ascontiguousarray(np.rot90(crop, k=int(k) % 4, axes=(0, 1)))


def grey_crop(crop):
    """Grey version of an RGB uint8 crop: luma L = 0.299 R + 0.587 G + 0.114 B on all channels."""
    rgb = crop.astype(np.float32)
    luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    luma = np.clip(np.round(luma), 0, 255).astype(np.uint8)
    return np.repeat(luma[..., None], 3, axis=-1)


def apply_jigsaw(items, permutation_index):
    """Slot i receives items[perm[i]]."""
    perm = JIGSAW_PERMUTATIONS[permutation_index]
    return [items[p] for p in perm]


def undo_jigsaw(items, permutation_index):
    """Inverse of `apply_jigsaw`: puts slot i back at index perm[i]."""
    perm = JIGSAW_PERMUTATIONS[permutation_index]
    restored = [None] * len(perm)
    for slot, p in enumerate(perm):
        restored[p] = items[slot]
    return restored


@dataclasses.dataclass
class KaleidoTaskPlan:
    """The transformations of one example; ids are indices inside their level."""

    rotation: int  # 0..3
    jigsaw: int  # 0..23
    camouflage_slot: object  # 0..8, or None when nothing is replaced
    camouflage_label: int  # slot, or 9 for "none replaced"
    grey_ids: tuple  # ascending level-4 indices
    blank_ids: tuple  # ascending level-5 indices


class KaleidoTaskSampler:
    """Draws a KaleidoTaskPlan.

    Args:
      num_grey: greyed level-4 crops per example.
      num_blank: blanked level-5 crops per example.
      camouflage_none_class: add label 9 "none replaced" (10 camouflage labels instead of 9).
    """

    def __init__(self, num_grey=2, num_blank=3, camouflage_none_class=False):
        if not 0 <= num_grey <= LEVEL_SIZES[3]:
            raise ValueError(f"num_grey must be in 0..{LEVEL_SIZES[3]}, got {num_grey}")
        if not 0 <= num_blank <= LEVEL_SIZES[4]:
            raise ValueError(f"num_blank must be in 0..{LEVEL_SIZES[4]}, got {num_blank}")
        self.num_grey = int(num_grey)
        self.num_blank = int(num_blank)
        self.camouflage_none_class = bool(camouflage_none_class)

    @property
    def camouflage_label_num(self):
        return LEVEL_SIZES[2] + (1 if self.camouflage_none_class else 0)

    @staticmethod
    def _fill(rng, forced, count, size, protected):
        """`count` distinct ids in 0..size-1: the forced ones first, then random unprotected ones."""
        chosen = []
        for i in forced:
            if len(chosen) < count and i not in chosen:
                chosen.append(int(i))
        free = [i for i in rng.permutation(size).tolist() if i not in chosen and i not in protected]
        # Protected ids are used only when nothing else is left.
        rest = [i for i in range(size) if i not in chosen and i not in free]
        for i in free + rest:
            if len(chosen) >= count:
                break
            chosen.append(i)
        return tuple(sorted(chosen))

    def sample(self, rng, forced=None, protected=None):
        """Draws a plan.

        Args:
          rng: numpy Generator.
          forced: {level: [ids]} patches that alignment-guided masking chose on levels 3, 4, 5.
          protected: {level: set(ids)} patches that must stay visible (their aligned token is masked).
        """
        forced = forced or {}
        protected = protected or {}
        rotation = int(rng.integers(NUM_ROTATIONS))
        jigsaw = int(rng.integers(len(JIGSAW_PERMUTATIONS)))
        forced3 = list(forced.get(3, ()))
        if forced3:
            slot = int(forced3[0])
        else:
            draw = int(rng.integers(self.camouflage_label_num))
            slot = None if draw == LEVEL_SIZES[2] else draw
            if slot is not None and slot in protected.get(3, set()):
                free = [i for i in range(LEVEL_SIZES[2]) if i not in protected.get(3, set())]
                slot = int(free[int(rng.integers(len(free)))]) if free else slot
        label = LEVEL_SIZES[2] if slot is None else slot
        grey = self._fill(rng, forced.get(4, ()), self.num_grey, LEVEL_SIZES[3], protected.get(4, set()))
        blank = self._fill(rng, forced.get(5, ()), self.num_blank, LEVEL_SIZES[4], protected.get(5, set()))
        return KaleidoTaskPlan(
            rotation=rotation,
            jigsaw=jigsaw,
            camouflage_slot=slot,
            camouflage_label=label,
            grey_ids=grey,
            blank_ids=blank,
        )
