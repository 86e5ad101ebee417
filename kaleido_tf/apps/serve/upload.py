"""Checks on an uploaded photo before any model sees it: size in bytes, a real image, pixels in bounds.

The pixel count is read from the image header (PIL opens lazily), so a decompression bomb is refused before its
pixels are decoded.
"""

import io

from PIL import Image, UnidentifiedImageError

from kaleido_tf.apps.serve.errors import RequestError

DEFAULT_MAX_BYTES = 10 * 1024 * 1024  # 10 MiB
DEFAULT_MAX_PIXELS = 40_000_000  # a 40-megapixel photo
MIN_SIDE = 5  # the finest kaleido grid is 5x5: a smaller image has no patch to give


def check_image(data, max_bytes=DEFAULT_MAX_BYTES, max_pixels=DEFAULT_MAX_PIXELS):
    """Returns (width, height) of the image in `data`, or raises RequestError saying what is wrong."""
    if not data:
        raise RequestError(400, "the upload is empty: send a JPEG or PNG file")
    if len(data) > max_bytes:
        raise RequestError(413, f"the upload is {len(data)} bytes, over the limit of {max_bytes}: send a smaller file")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            fmt = image.format
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise RequestError(400, "the upload is not an image this server reads: send a JPEG or PNG file") from None
    if fmt not in ("JPEG", "PNG"):
        raise RequestError(415, f"the upload is a {fmt} image: send a JPEG or PNG file")
    if width * height > max_pixels:
        raise RequestError(
            413, f"the image is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}"
        )
    if min(width, height) < MIN_SIDE:
        raise RequestError(400, f"the image is {width}x{height}: at least {MIN_SIDE}x{MIN_SIDE} pixels are needed")
    return width, height
