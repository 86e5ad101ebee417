"""Kaleido patches: the foreground box cut into 1x1, 2x2, 3x3, 4x4 and 5x5 grids (55 crops).

Order ("level order"): level 1 (1 crop), level 2 (4), level 3 (9), level 4 (16), level 5 (25); inside
a level the cells go row by row, left to right. Slot `s` of the 55 is `LEVEL_OFFSETS[level-1] + i`.

Cell edges: for an n x n grid over the box (X0, Y0, X1, Y1) of width W = X1 - X0 and height
H = Y1 - Y0, column c spans pixels [X0 + round(c W / n), X0 + round((c+1) W / n)) and row r likewise
in y. Every cell is at least one pixel wide when W, H >= 5.

Positions, 5 numbers per crop, normalised to the foreground box (not to the whole image):
    [x1, x2, y1, y2, w*h] = [(cx0 - X0) / W, (cx1 - X0) / W, (cy0 - Y0) / H, (cy1 - Y0) / H,
                             ((cx1 - cx0) / W) * ((cy1 - cy0) / H)]
so the level-1 crop is always [0, 1, 0, 1, 1] and cell (r, c) of level n is close to
[c/n, (c+1)/n, r/n, (r+1)/n, 1/n^2] (exactly so when n divides the box size).

Each crop is resized (bilinear) to `crop_size` x `crop_size` without keeping the aspect ratio.
"""

import dataclasses

import numpy as np
from PIL import Image

# The level geometry lives in kaleido_tf.utils.kaleido_levels; imported here for this module's users.
from kaleido_tf.utils.kaleido_levels import (  # noqa: F401
    LEVEL_GRIDS,
    LEVEL_OFFSETS,
    LEVEL_SIZES,
    NUM_PATCHES,
    POSITION_SIZE,
    level_slots,
)


def grid_boxes(box, n):
    """The n*n cells of `box` (x0, y0, x1, y1), row-major, as pixel-edge tuples."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    xs = [x0 + int(round(c * w / n)) for c in range(n + 1)]
    ys = [y0 + int(round(r * h / n)) for r in range(n + 1)]
    return [(xs[c], ys[r], xs[c + 1], ys[r + 1]) for r in range(n) for c in range(n)]


def normalised_position(box, cell):
    """[x1, x2, y1, y2, w*h] of `cell` relative to `box` (see the module docstring)."""
    x0, y0, x1, y1 = box
    w, h = float(x1 - x0), float(y1 - y0)
    cx0, cy0, cx1, cy1 = cell
    nx1, nx2 = (cx0 - x0) / w, (cx1 - x0) / w
    ny1, ny2 = (cy0 - y0) / h, (cy1 - y0) / h
    return [nx1, nx2, ny1, ny2, (nx2 - nx1) * (ny2 - ny1)]


@dataclasses.dataclass
class KaleidoPatches:
    """The 55 crops of one image: boxes, positions and lazily resized crops."""

    image: Image.Image  # RGB
    box: tuple  # foreground box (x0, y0, x1, y1)
    boxes: np.ndarray  # [55, 4] int: (x0, y0, x1, y1) of each crop
    positions: np.ndarray  # [55, 5] float32
    crop_size: int
    foreground_fallback: object = None

    def crop(self, slot):
        """Crop `slot` resized to [S, S, 3] uint8."""
        x0, y0, x1, y1 = (int(v) for v in self.boxes[slot])
        # Crop first so that the filter never reads pixels outside the cell.
        resized = self.image.crop((x0, y0, x1, y1)).resize((self.crop_size, self.crop_size), Image.BILINEAR)
        return np.asarray(resized, dtype=np.uint8)

    def crops(self, slots=None):
        """Crops for `slots` (all 55 by default): [n, S, S, 3] uint8."""
        slots = range(NUM_PATCHES) if slots is None else slots
        return np.stack([self.crop(s) for s in slots])


class KaleidoPatchGenerator:
    """Cuts an image into the 55 kaleido crops.

    Args:
      crop_size: side in pixels of each resized crop.
      foreground: a callable returning a ForegroundResult (e.g. `ForegroundDetector("saliency")`);
        None means the full image.
    """

    def __init__(self, crop_size=224, foreground=None):
        if crop_size < 8:
            raise ValueError(f"crop_size must be >= 8, got {crop_size}")
        self.crop_size = int(crop_size)
        self.foreground = foreground

    def __call__(self, image):
        """`image`: PIL RGB image. Returns KaleidoPatches."""
        width, height = image.size
        fallback = None
        if self.foreground is None:
            box = (0, 0, width, height)
        else:
            result = self.foreground(image)
            box, fallback = tuple(int(v) for v in result.box), result.fallback
        if box[2] - box[0] < LEVEL_GRIDS[-1] or box[3] - box[1] < LEVEL_GRIDS[-1]:
            box, fallback = (0, 0, width, height), "foreground box smaller than the 5x5 grid"
        if width < LEVEL_GRIDS[-1] or height < LEVEL_GRIDS[-1]:
            raise ValueError(f"image of {width}x{height} pixels is too small for a 5x5 grid")
        boxes, positions = [], []
        for n in LEVEL_GRIDS:
            for cell in grid_boxes(box, n):
                boxes.append(cell)
                positions.append(normalised_position(box, cell))
        return KaleidoPatches(
            image=image,
            box=box,
            boxes=np.asarray(boxes, np.int64),
            positions=np.asarray(positions, np.float32),
            crop_size=self.crop_size,
            foreground_fallback=fallback,
        )
