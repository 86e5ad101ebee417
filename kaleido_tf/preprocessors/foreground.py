"""Foreground box of a catalogue photo, in front of a plain background.

The default saliency step suits product shots on a uniform backdrop:

1. Work on a copy whose longer side is at most `work_size` pixels.
2. The background colour is the per-channel median of a `border`-pixel frame around the picture. If
   that frame is not uniform (the 90th percentile of the pixels' largest channel difference from
   the median exceeds `max_border_spread`), the picture has no plain background: fall back to the
   full image.
3. A pixel is foreground when its largest channel difference from the background colour exceeds
   `threshold` (0-255 scale).
4. A row (column) belongs to the object when at least `min_line_fraction` of its pixels, and at
   least one, are foreground; the box spans the first to the last such row and column.
5. The box grows by `margin` of the image size on each side (clipped to the image).
6. If nothing is found, or the box is narrower or lower than `min_fraction` of the image, fall back
   to the full image.

With method "none" the box is always the full image. Boxes are (x0, y0, x1, y1) pixel edges,
half-open: the object covers columns x0..x1-1 and rows y0..y1-1.
"""

import dataclasses

import numpy as np
from PIL import Image

FOREGROUND_METHODS = ("saliency", "none")


@dataclasses.dataclass(frozen=True)
class ForegroundResult:
    box: tuple  # (x0, y0, x1, y1)
    fallback: object  # None, or why the full image was used


class ForegroundDetector:
    """Finds the object box; see the module docstring for the steps and their parameters."""

    def __init__(
        self,
        method="saliency",
        threshold=30.0,
        min_fraction=0.2,
        border=2,
        max_border_spread=40.0,
        margin=0.02,
        min_line_fraction=0.01,
        work_size=256,
    ):
        if method not in FOREGROUND_METHODS:
            raise ValueError(f"foreground method must be one of {FOREGROUND_METHODS}, got {method!r}")
        if not 0.0 < min_fraction <= 1.0:
            raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction}")
        self.method = method
        self.threshold = float(threshold)
        self.min_fraction = float(min_fraction)
        self.border = int(border)
        self.max_border_spread = float(max_border_spread)
        self.margin = float(margin)
        self.min_line_fraction = float(min_line_fraction)
        self.work_size = int(work_size)

    def __call__(self, image):
        """`image`: a PIL RGB image or a uint8 array [H, W, 3]. Returns a ForegroundResult."""
        if isinstance(image, np.ndarray):
            height, width = image.shape[:2]
            pil = None
        else:
            width, height = image.size
            pil = image
        full = (0, 0, width, height)
        if self.method == "none":
            return ForegroundResult(full, None)

        scale = min(1.0, self.work_size / float(max(width, height)))
        if scale < 1.0:
            small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
            if pil is None:
                pil = Image.fromarray(image)
            arr = np.asarray(pil.resize(small_size, Image.BILINEAR), dtype=np.int16)  # [h, w, 3]
        else:
            arr = np.asarray(pil if pil is not None else image, dtype=np.int16)
        h, w = arr.shape[:2]
        b = max(1, min(self.border, h // 4, w // 4))
        frame = np.concatenate(
            [arr[:b].reshape(-1, 3), arr[-b:].reshape(-1, 3), arr[:, :b].reshape(-1, 3), arr[:, -b:].reshape(-1, 3)]
        )  # [P, 3]
        background = np.median(frame, axis=0)  # [3]
        spread = np.abs(frame - background).max(axis=1)
        if np.percentile(spread, 90) > self.max_border_spread:
            return ForegroundResult(full, "background not uniform")

        diff = np.abs(arr - background).max(axis=2)  # [h, w]
        mask = diff > self.threshold
        rows = np.flatnonzero(mask.sum(axis=1) >= max(1.0, self.min_line_fraction * w))
        cols = np.flatnonzero(mask.sum(axis=0) >= max(1.0, self.min_line_fraction * h))
        if rows.size == 0 or cols.size == 0:
            return ForegroundResult(full, "no foreground found")
        # Back to full-resolution pixel edges.
        x0 = cols[0] / w * width
        x1 = (cols[-1] + 1) / w * width
        y0 = rows[0] / h * height
        y1 = (rows[-1] + 1) / h * height
        mx, my = self.margin * width, self.margin * height
        x0 = max(0, int(np.floor(x0 - mx)))
        y0 = max(0, int(np.floor(y0 - my)))
        x1 = min(width, int(np.ceil(x1 + mx)))
        y1 = min(height, int(np.ceil(y1 + my)))
        if (x1 - x0) < self.min_fraction * width or (y1 - y0) < self.min_fraction * height:
            return ForegroundResult(full, "foreground too small")
        return ForegroundResult((x0, y0, x1, y1), None)
