"""Image bytes -> RGB uint8 tensor in TensorFlow ops only, following preprocessors/image_loader.py.

Checks (each an `InvalidArgumentError` whose message names `image_bytes` and the problem), in this order,
all before any pixel is decoded:
  0 bytes; neither a JPEG (FF D8 FF) nor a PNG signature; a JPEG without its end marker (FF D9) or a PNG
  without its IEND chunk at the end (truncated); header dimensions (tf.image.extract_jpeg_shape, or the PNG
  IHDR bytes) with more than `max_pixels` pixels (decompression bomb); a shorter side below `min_size`.

Conversions, as the offline loader does them:
  - JPEG: decoded with the accurate integer DCT and fancy upsampling (PIL's defaults); greyscale -> RGB.
    EXIF orientation (tag 0x0112 of IFD0 in the APP1 "Exif" segment) is parsed from the bytes and applied
    with the same transposes as `PIL.ImageOps.exif_transpose`.
  - PNG <= 8 bit: greyscale and palette -> RGB; alpha (RGBA, grey+alpha, palette with tRNS) composited over
    white with PIL's integer arithmetic of `Image.alpha_composite`.
  - PNG 16 bit: greyscale scaled by the bit depth, round(v * 255 / 65535) as the loader; colour (and
    grey+alpha) keeps the high byte, as PIL reads them.
  - Longer side above `max_size`: downscaled with the PIL-exact bilinear filter of graph_patches.
Not covered (documented in docs/raw_images.md): CMYK JPEG (refused by the TF decoder), EXIF in PNG eXIf
chunks, and PIL's JPEG draft / reducing_gap shortcuts for images above `max_size` (pixels then differ).
"""

import tensorflow as tf

from kaleido_tf.preprocessors.graph_patches import pil_bilinear_resize

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"IEND\xaeB`\x82"
_MAX_JPEG_SEGMENTS = 64


def _bytes_at(data, pos, n):
    """n bytes of `data` from `pos` as int32 [n] (zeros past the end)."""
    piece = tf.strings.substr(data, pos, n)
    padded = piece + tf.strings.substr(tf.constant(b"\x00" * 8), 0, n - tf.strings.length(piece))
    return tf.cast(tf.io.decode_raw(padded, tf.uint8), tf.int32)


def _uint(data, pos, n, little=False):
    b = _bytes_at(data, pos, n)  # [n]
    powers = [256**i for i in range(n)]
    weights = tf.constant(powers if little else powers[::-1], tf.int32)
    return tf.reduce_sum(b * weights)


def exif_orientation(data):
    """EXIF orientation 1..8 of JPEG `data` (1 when absent or malformed), int32 scalar."""
    size = tf.strings.length(data)

    def cond(pos, found, i):
        return tf.logical_and(tf.logical_and(found < 0, i < _MAX_JPEG_SEGMENTS), pos + 4 <= size)

    def body(pos, found, i):
        marker = _bytes_at(data, pos, 2)
        length = _uint(data, pos + 2, 2)
        is_app1 = tf.logical_and(tf.equal(marker[0], 0xFF), tf.equal(marker[1], 0xE1))
        is_exif = tf.logical_and(is_app1, tf.equal(tf.strings.substr(data, pos + 4, 6), b"Exif\x00\x00"))
        stop = tf.logical_or(tf.not_equal(marker[0], 0xFF), tf.equal(marker[1], 0xDA))  # bad marker or scan
        found = tf.where(is_exif, pos + 10, tf.where(stop, 0, found))
        return pos + 2 + length, found, i + 1

    _, tiff, _ = tf.while_loop(cond, body, (tf.constant(2), tf.constant(-1), tf.constant(0)))

    def parse():
        order = tf.strings.substr(data, tiff, 2)
        little = tf.equal(order, b"II")
        valid = tf.logical_or(little, tf.equal(order, b"MM"))

        def read(pos, n):
            return tf.cond(little, lambda: _uint(data, pos, n, True), lambda: _uint(data, pos, n, False))

        ifd = tiff + read(tiff + 4, 4)
        count = tf.minimum(read(ifd, 2), 512)
        entries = ifd + 2 + 12 * tf.range(count)
        tags = tf.map_fn(lambda p: read(p, 2), entries, fn_output_signature=tf.int32)
        hit = tf.where(tf.equal(tags, 0x0112))[:, 0]
        value = tf.cond(
            tf.size(hit) > 0, lambda: read(tf.gather(entries, hit[0]) + 8, 2), lambda: tf.constant(1, tf.int32)
        )
        ok = tf.logical_and(valid, tf.logical_and(value >= 1, value <= 8))
        return tf.where(ok, value, 1)

    return tf.cond(tiff > 0, parse, lambda: tf.constant(1, tf.int32))


def apply_orientation(image, orientation):
    """The transposes of PIL.ImageOps.exif_transpose for orientation 1..8; image [H, W, C]."""
    # tf.reverse, not negative-stride slices: TensorFlow's layout optimizer fails on those
    transposed = tf.transpose(image, [1, 0, 2])
    branches = [
        lambda: image,
        lambda: image,
        lambda: tf.reverse(image, [1]),  # 2: mirror left-right
        lambda: tf.reverse(image, [0, 1]),  # 3: rotate 180
        lambda: tf.reverse(image, [0]),  # 4: mirror top-bottom
        lambda: transposed,  # 5: transpose
        lambda: tf.image.rot90(image, k=3),  # 6: rotate 90 clockwise
        lambda: tf.reverse(transposed, [0, 1]),  # 7: transverse
        lambda: tf.image.rot90(image, k=1),  # 8: rotate 90 counter-clockwise
    ]
    return tf.switch_case(orientation, branches)


def over_white(rgba):
    """RGBA uint8 [H, W, 4] over an opaque white background, with PIL's alpha_composite rounding."""
    x = tf.cast(rgba, tf.int64)
    rgb, a = x[..., :3], x[..., 3:]
    tmp = rgb * a * 128 + 255 * (255 - a) * 128 + (0x80 << 7)  # [H, W, 3]
    rs = tf.bitwise.right_shift
    out = rs(rs(rs(tmp, 8) + tmp, 8), 7)
    out = tf.where(tf.equal(a, 0), tf.constant(255, tf.int64), out)
    return tf.cast(out, tf.uint8)


def to_rgb(native):
    """uint8 [H, W, C] with C in 1..4 (grey, grey+alpha, RGB, RGBA) -> RGB uint8 [H, W, 3]."""
    c = tf.shape(native)[2]
    branches = [
        lambda: tf.tile(native[..., :1], [1, 1, 3]),
        lambda: over_white(tf.concat([tf.tile(native[..., :1], [1, 1, 3]), native[..., 1:2]], axis=2)),
        lambda: native[..., :3],
        lambda: over_white(native[..., :4]),
    ]
    out = tf.switch_case(tf.clip_by_value(c - 1, 0, 3), branches)
    return tf.ensure_shape(out, [None, None, 3])


class GraphImageDecoder(tf.Module):
    """Decodes one image's bytes to RGB uint8 [H, W, 3]; see the module docstring.

    Args:
      min_size: shorter side below this is refused (the offline loader's min_image_size).
      max_size: longer side above this is downscaled to it.
      max_pixels: header dimensions above this many pixels are refused before decoding.
    """

    def __init__(self, min_size=32, max_size=2048, max_pixels=200_000_000, name=None):
        super().__init__(name=name)
        if min_size < 5 or max_size < min_size:
            raise ValueError(f"need 5 <= min_size <= max_size, got min_size={min_size}, max_size={max_size}")
        self.min_size = int(min_size)
        self.max_size = int(max_size)
        self.max_pixels = int(max_pixels)

    def header(self, data):
        """(is_png, height, width, png bit depth, png colour type) after the byte-level checks."""
        size = tf.strings.length(data)
        checks = [tf.debugging.assert_greater(size, 0, message="image_bytes: 0 bytes, not an image")]
        with tf.control_dependencies(checks):
            is_jpeg = tf.equal(tf.strings.substr(data, 0, 3), _JPEG_MAGIC)
            is_png = tf.equal(tf.strings.substr(data, 0, 8), _PNG_MAGIC)
        checks = [
            tf.debugging.Assert(
                tf.logical_or(is_jpeg, is_png), ["image_bytes: not a JPEG or PNG image (unknown signature)"]
            )
        ]
        with tf.control_dependencies(checks):
            jpeg_end = tf.equal(tf.strings.substr(data, tf.maximum(size - 2, 0), 2), b"\xff\xd9")
            png_end = tf.equal(tf.strings.substr(data, tf.maximum(size - 8, 0), 8), _PNG_IEND)
            complete = tf.where(is_png, png_end, jpeg_end)
        checks = [tf.debugging.Assert(complete, ["image_bytes: truncated image (no end marker)"])]
        with tf.control_dependencies(checks):
            hw = tf.cond(
                is_png,
                lambda: tf.stack([_uint(data, 20, 4), _uint(data, 16, 4)]),
                lambda: tf.image.extract_jpeg_shape(data)[:2],
            )
        hw = tf.cast(hw, tf.int64)
        pixels = hw[0] * hw[1]
        checks = [
            tf.debugging.Assert(
                pixels <= self.max_pixels,
                ["image_bytes: header claims", hw[1], "x", hw[0], f"pixels, more than max_pixels={self.max_pixels}"],
            ),
            tf.debugging.Assert(
                tf.reduce_min(hw) >= self.min_size,
                ["image_bytes: too small:", hw[1], "x", hw[0], f"shorter side below {self.min_size} px"],
            ),
        ]
        with tf.control_dependencies(checks):
            depth = tf.where(is_png, _uint(data, 24, 1), 8)
            colour = tf.where(is_png, _uint(data, 25, 1), -1)
            return is_png, tf.cast(hw, tf.int32), depth, colour

    def decode(self, data):
        """RGB uint8 [H, W, 3] from one image's bytes (scalar tf.string)."""
        data = tf.convert_to_tensor(data, tf.string)
        is_png, _, depth, colour = self.header(data)

        def png():
            # Native channels (1 grey, 2 grey+alpha, 3 RGB or palette, 4 RGBA or palette+tRNS): asking the
            # decoder for 4 channels fills alpha wrongly for low-bit palettes.
            def deep():
                v = tf.cast(tf.io.decode_png(data, channels=0, dtype=tf.uint16), tf.int32)  # [H, W, C]
                grey = tf.equal(colour, 0)
                return tf.cast(tf.where(grey, (2 * v + 257) // 514, tf.bitwise.right_shift(v, 8)), tf.uint8)

            native = tf.cond(depth > 8, deep, lambda: tf.io.decode_png(data, channels=0))
            return to_rgb(native)

        def jpeg():
            rgb = tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")
            return apply_orientation(rgb, exif_orientation(data))

        image = tf.cond(is_png, png, jpeg)
        image.set_shape([None, None, 3])
        shape = tf.shape(image)
        longer = tf.maximum(shape[0], shape[1])

        def downscale():
            scale = tf.cast(self.max_size, tf.float64) / tf.cast(longer, tf.float64)
            new = tf.maximum(1, tf.cast(tf.round(tf.cast(shape[:2], tf.float64) * scale), tf.int32))
            return pil_bilinear_resize(image, new[0], new[1])

        return tf.cond(longer > self.max_size, downscale, lambda: image)
