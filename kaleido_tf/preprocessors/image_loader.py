"""Loads product images as RGB, converting what can be converted and rejecting the rest with a reason.

Converted (the product keeps the image; the conversion is counted in the summary):
  greyscale / bilevel -> RGB, palette -> RGB, RGBA / LA / palette with transparency -> RGB over a
  white background, CMYK -> RGB, 16-bit or float greyscale -> 8-bit RGB, EXIF orientation applied
  (every orientation other than 1 is counted "exif-rotated", flips and half turns included),
  images whose longer side exceeds `max_size` -> downscaled to `max_size`.
High bit depth is scaled by the bit depth, the same for every image: 16-bit greyscale (modes I;16*,
and I with values up to 65535, as PNG stores it) by 255 / 65535, rounded, so 65535 is white and a
dark image stays dark; 32-bit integers by 255 / (2**32 - 1) of their offset from -2**31; float
images are taken as 0-255 and clipped. (A PNG's sBIT chunk, the significant bits, is not read:
a 12-bit scan stored in 16 bits comes out darker by its unused range.)
Rejected (an `ImageRejected` with a one-line reason that goes to rejected.tsv):
  missing file, unreadable or truncated file, shorter side below `min_size`, more pixels than
  `max_pixels` (too large to decode safely).
"""

import dataclasses
import os
import warnings

import numpy as np
from PIL import Image, ImageOps

_WHITE = (255, 255, 255)
_EXIF_ORIENTATION = 0x0112
_MAX_16BIT = 65535.0


def _to_8bit(arr, mode):
    """[H, W] uint8 of a high-bit-depth greyscale array, scaled by the bit depth (not the image's maximum)."""
    arr = arr.astype(np.float64)
    if mode == "F":
        scaled = arr
    elif mode.startswith("I;16") or (arr.size == 0 or (arr.min() >= 0 and arr.max() <= _MAX_16BIT)):
        scaled = arr * (255.0 / _MAX_16BIT)
    else:  # 32-bit signed integers
        scaled = (arr + 2.0**31) * (255.0 / (2.0**32 - 1))
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


class ImageRejected(Exception):
    """An image that cannot be used; `reason` is a short human-readable line."""

    def __init__(self, path, reason):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclasses.dataclass
class LoadedImage:
    image: Image.Image  # mode "RGB"
    conversions: tuple  # e.g. ("cmyk->rgb", "downscaled")
    original_size: tuple  # (width, height) as stored in the file

    @property
    def size(self):
        return self.image.size


def _over_white(img):
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, _WHITE + (255,))
    return Image.alpha_composite(background, rgba).convert("RGB")


class ImageLoader:
    """Opens, validates and normalises images.

    Args:
      min_size: minimum length in pixels of the shorter side; smaller images are rejected.
      max_size: the longer side is downscaled to this many pixels when larger.
      max_pixels: images with more pixels than this are rejected before decoding.
    """

    def __init__(self, min_size=32, max_size=2048, max_pixels=200_000_000):
        if min_size < 1 or max_size < min_size:
            raise ValueError(f"need 1 <= min_size <= max_size, got min_size={min_size}, max_size={max_size}")
        self.min_size = int(min_size)
        self.max_size = int(max_size)
        self.max_pixels = int(max_pixels)

    def load(self, path):
        """Returns a LoadedImage or raises ImageRejected."""
        path = os.fspath(path)
        if not os.path.exists(path):
            raise ImageRejected(path, "missing file")
        if not os.path.isfile(path):
            raise ImageRejected(path, "not a regular file")
        conversions = []
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = Image.open(path)
                width, height = img.size
                if width * height > self.max_pixels:
                    raise ImageRejected(
                        path, f"too large to decode: {width}x{height} pixels (more than {self.max_pixels})"
                    )
                if min(width, height) < self.min_size:
                    raise ImageRejected(path, f"too small: {width}x{height}, shorter side below {self.min_size} px")
                if img.format == "JPEG" and max(width, height) > self.max_size:
                    img.draft(img.mode, (self.max_size, self.max_size))  # decode at a reduced scale
                img.load()
                drafted = img.size != (width, height)
        except ImageRejected:
            raise
        except Image.DecompressionBombError as e:
            raise ImageRejected(path, f"too large to decode: {e}") from None
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError, Image.UnidentifiedImageError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ImageRejected(path, f"corrupt or unreadable image: {reason}") from None
        original_size = (width, height)

        try:
            orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
            transposed = ImageOps.exif_transpose(img)
        except Exception:  # a malformed EXIF block is not a reason to lose the picture
            orientation, transposed = 1, img
        if orientation in range(2, 9) and transposed is not img:
            conversions.append("exif-rotated")
        img = transposed

        mode = img.mode
        if mode == "RGB":
            pass
        elif mode in ("L", "1"):
            img = img.convert("RGB")
            conversions.append("greyscale->rgb")
        elif mode in ("RGBA", "RGBa", "LA", "La", "PA"):
            img = _over_white(img)
            conversions.append("alpha->rgb")
        elif mode == "P":
            if "transparency" in img.info:
                img = _over_white(img)
                conversions.append("alpha->rgb")
            else:
                img = img.convert("RGB")
                conversions.append("palette->rgb")
        elif mode == "CMYK":
            img = img.convert("RGB")
            conversions.append("cmyk->rgb")
        elif mode.startswith("I") or mode == "F":
            img = Image.fromarray(_to_8bit(np.asarray(img), mode), mode="L").convert("RGB")
            conversions.append("high-bit-depth->rgb")
        else:
            try:
                img = img.convert("RGB")
            except (OSError, ValueError) as e:
                raise ImageRejected(path, f"unsupported colour mode {mode}: {e}") from None
            conversions.append(f"{mode.lower()}->rgb")

        if max(img.size) > self.max_size:
            w, h = img.size
            scale = self.max_size / float(max(w, h))
            new = (max(1, round(w * scale)), max(1, round(h * scale)))
            img = img.resize(new, Image.BILINEAR, reducing_gap=2.0)
            conversions.append("downscaled")
        elif drafted:
            conversions.append("downscaled")  # JPEG draft decoding already reduced it
        if min(img.size) < self.min_size:
            raise ImageRejected(
                path, f"too small after downscaling to {img.size[0]}x{img.size[1]} (aspect ratio too extreme)"
            )
        return LoadedImage(image=img, conversions=tuple(conversions), original_size=original_size)
