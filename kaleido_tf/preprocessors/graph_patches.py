"""Foreground box, the 55 kaleido boxes, positions and crops in TensorFlow ops, bit-exact with the PIL path.

- `pil_bilinear_resize` reproduces Pillow's BILINEAR resampling of 8-bit images (the separable triangle
  filter widened by the downscale factor, coefficients normalised and rounded to 22-bit fixed point,
  horizontal pass then vertical pass, each rounded and clipped to uint8). The fixed-point sums are exact
  integers below 2^53, so a float64 matmul gives them exactly: the crops equal PIL's byte for byte.
- `foreground_box` follows preprocessors/foreground.py step by step (median, NumPy's linear 90th percentile,
  the same float64 expressions), so the boxes are identical.
- `kaleido_boxes` follows preprocessors/kaleido_patches.py (round half to even as Python's round).
"""

import tensorflow as tf

from kaleido_tf.preprocessors.foreground import ForegroundDetector
from kaleido_tf.utils.kaleido_levels import LEVEL_GRIDS, NUM_PATCHES

_PRECISION_BITS = 22  # Pillow's fixed-point precision for 8-bit resampling


def _f(value):
    return tf.constant(value, tf.float64)


def resample_matrix(in_size, out_size):
    """Pillow's bilinear coefficients as a dense integer-valued float64 matrix [out_size, in_size]."""
    in_f = tf.cast(in_size, tf.float64)
    scale = in_f / tf.cast(out_size, tf.float64)
    filterscale = tf.maximum(scale, _f(1.0))
    support = 1.0 * filterscale
    center = (tf.cast(tf.range(out_size), tf.float64) + 0.5) * scale  # [O]
    xmin = tf.maximum(tf.math.floor(center - support + 0.5), _f(0.0))  # [O]
    xmax = tf.minimum(tf.math.floor(center + support + 0.5), in_f)  # [O]
    x = tf.cast(tf.range(in_size), tf.float64)[None, :]  # [1, I]
    inside = tf.logical_and(x >= xmin[:, None], x < xmax[:, None])  # [O, I]
    ss = 1.0 / filterscale
    arg = tf.abs((x - center[:, None] + 0.5) * ss)
    w = tf.where(inside & (arg < 1.0), 1.0 - arg, _f(0.0))  # [O, I]
    ww = tf.reduce_sum(w, axis=1, keepdims=True)
    w = tf.where(ww != 0.0, w / tf.where(ww != 0.0, ww, _f(1.0)), w)
    return tf.math.floor(0.5 + w * float(1 << _PRECISION_BITS))


def band(in_size, out_size):
    """The non-zero band of resample_matrix: input indices and coefficients, each [out_size, K].

    K = 2 * ceil(filter support) + 1 taps cover every output's window; taps past the input's end get weight 0.
    """
    m = resample_matrix(in_size, out_size)  # [O, I]
    scale = tf.cast(in_size, tf.float64) / tf.cast(out_size, tf.float64)
    taps = 2 * tf.cast(tf.math.ceil(tf.maximum(scale, _f(1.0))), tf.int32) + 1
    first = tf.argmax(tf.cast(m > 0.0, tf.int32), axis=1, output_type=tf.int32)  # [O] first non-zero input
    idx = first[:, None] + tf.range(taps)[None, :]  # [O, K]
    valid = idx < in_size
    idx = tf.minimum(idx, in_size - 1)
    k = tf.where(valid, tf.gather(m, idx, batch_dims=1), _f(0.0))
    return idx, k


def _round_clip(acc):
    acc = tf.math.floor((acc + float(1 << (_PRECISION_BITS - 1))) / float(1 << _PRECISION_BITS))
    return tf.clip_by_value(acc, _f(0.0), _f(255.0))


def pil_bilinear_resize(image, out_height, out_width):
    """uint8 [H, W, C] -> uint8 [out_height, out_width, C], equal to PIL's Image.resize(..., BILINEAR)."""
    shape = tf.shape(image)
    x = tf.cast(image, tf.float64)  # [H, W, C]

    def horizontal(x):
        idx, k = band(shape[1], out_width)  # [w, K]
        return _round_clip(tf.reduce_sum(tf.gather(x, idx, axis=1) * k[None, :, :, None], axis=2))  # [H, w, C]

    def vertical(x):
        idx, k = band(shape[0], out_height)  # [h, K]
        return _round_clip(tf.reduce_sum(tf.gather(x, idx, axis=0) * k[:, :, None, None], axis=1))  # [h, W, C]

    def h_pass(x):
        return tf.cond(tf.equal(shape[1], out_width), lambda: x, lambda: horizontal(x))

    def v_pass(x):
        return tf.cond(tf.equal(shape[0], out_height), lambda: x, lambda: vertical(x))

    # Pillow runs the vertical pass first when it shrinks the height by the larger factor (measured
    # against Pillow 13 on random sizes; ties and upscales go horizontal first).
    h64, w64 = tf.cast(shape[0], tf.int64), tf.cast(shape[1], tf.int64)
    oh64, ow64 = tf.cast(out_height, tf.int64), tf.cast(out_width, tf.int64)
    vertical_first = tf.logical_and(oh64 < h64, h64 * ow64 > w64 * oh64)
    x = tf.cond(vertical_first, lambda: h_pass(v_pass(x)), lambda: v_pass(h_pass(x)))
    return tf.cast(x, tf.uint8)


def _median(values):
    """np.median along axis 0 of [P, C] values, float64 [C]."""
    s = tf.sort(tf.cast(values, tf.float64), axis=0)
    n = tf.shape(s)[0]
    lo, hi = (n - 1) // 2, n // 2
    return (s[lo] + s[hi]) / 2.0


def _percentile(values, q):
    """np.percentile(values, 100 * q) with the default linear method, values float64 [P]."""
    s = tf.sort(values)
    n = tf.shape(s)[0]
    vi = tf.cast(n, tf.float64) * q + (1.0 + q * -1.0) - 1.0  # NumPy's virtual index, same float steps
    prev = tf.math.floor(vi)
    gamma = vi - prev
    i0 = tf.clip_by_value(tf.cast(prev, tf.int32), 0, n - 1)
    i1 = tf.clip_by_value(i0 + 1, 0, n - 1)
    a, b = s[i0], s[i1]
    diff = b - a
    return tf.where(gamma >= 0.5, b - diff * (1.0 - gamma), a + diff * gamma)


class GraphForeground(tf.Module):
    """The saliency box of a ForegroundDetector (preprocessors/foreground.py) in TF ops, with its settings."""

    def __init__(self, detector=None, name=None):
        super().__init__(name=name)
        self.detector = ForegroundDetector() if detector is None else detector

    @classmethod
    def from_detector(cls, detector):
        """The graph twin of a ForegroundDetector."""
        return cls(detector)

    def __call__(self, image):
        """image uint8 [H, W, 3] -> (box int32 [4] (x0, y0, x1, y1), fallback int32: 0 none, 1..3 the reasons)."""
        d = self.detector
        shape = tf.shape(image)
        height, width = shape[0], shape[1]
        full = tf.stack([0, 0, width, height])
        if d.method == "none":
            return full, tf.constant(0)
        wf, hf = tf.cast(width, tf.float64), tf.cast(height, tf.float64)
        scale = tf.minimum(_f(1.0), _f(d.work_size) / tf.maximum(wf, hf))
        small_w = tf.maximum(1, tf.cast(tf.round(wf * scale), tf.int32))
        small_h = tf.maximum(1, tf.cast(tf.round(hf * scale), tf.int32))
        arr = tf.cond(scale < 1.0, lambda: pil_bilinear_resize(image, small_h, small_w), lambda: image)
        arr = tf.cast(arr, tf.float64)  # [h, w, 3]
        h, w = tf.shape(arr)[0], tf.shape(arr)[1]
        b = tf.maximum(1, tf.minimum(tf.minimum(d.border, h // 4), w // 4))
        frame = tf.concat(
            [
                tf.reshape(arr[:b], [-1, 3]),
                tf.reshape(arr[h - b :], [-1, 3]),
                tf.reshape(arr[:, :b], [-1, 3]),
                tf.reshape(arr[:, w - b :], [-1, 3]),
            ],
            axis=0,
        )  # [P, 3]
        background = _median(frame)  # [3]
        spread = tf.reduce_max(tf.abs(frame - background), axis=1)  # [P]
        not_uniform = _percentile(spread, 0.9) > d.max_border_spread

        mask = tf.reduce_max(tf.abs(arr - background), axis=2) > d.threshold  # [h, w]
        counts = tf.cast(mask, tf.float64)
        w64, h64 = tf.cast(w, tf.float64), tf.cast(h, tf.float64)
        rows = tf.where(tf.reduce_sum(counts, axis=1) >= tf.maximum(_f(1.0), d.min_line_fraction * w64))[:, 0]
        cols = tf.where(tf.reduce_sum(counts, axis=0) >= tf.maximum(_f(1.0), d.min_line_fraction * h64))[:, 0]
        empty = tf.logical_or(tf.equal(tf.size(rows), 0), tf.equal(tf.size(cols), 0))

        def first_last(idx):
            idx = tf.cast(tf.concat([idx, [0]], 0), tf.float64)
            return idx[0], idx[tf.maximum(tf.size(idx) - 2, 0)]

        c0, c1 = first_last(cols)
        r0, r1 = first_last(rows)
        x0, x1 = c0 / w64 * wf, (c1 + 1.0) / w64 * wf
        y0, y1 = r0 / h64 * hf, (r1 + 1.0) / h64 * hf
        mx, my = d.margin * wf, d.margin * hf
        x0 = tf.maximum(_f(0.0), tf.math.floor(x0 - mx))
        y0 = tf.maximum(_f(0.0), tf.math.floor(y0 - my))
        x1 = tf.minimum(wf, tf.math.ceil(x1 + mx))
        y1 = tf.minimum(hf, tf.math.ceil(y1 + my))
        small = tf.logical_or((x1 - x0) < d.min_fraction * wf, (y1 - y0) < d.min_fraction * hf)
        box = tf.cast(tf.stack([x0, y0, x1, y1]), tf.int32)
        fallback = tf.where(not_uniform, 1, tf.where(empty, 2, tf.where(small, 3, 0)))
        return tf.where(fallback > 0, full, box), fallback


FALLBACK_REASONS = (None, "background not uniform", "no foreground found", "foreground too small")


def kaleido_boxes(box, width, height):
    """The 55 cells (int32 [55, 4]) and positions (float32 [55, 5]) of `box`, as kaleido_patches computes them.

    A box smaller than the 5x5 grid falls back to the full image, as the offline generator does.
    """
    box = tf.cast(box, tf.int32)
    too_small = tf.logical_or(box[2] - box[0] < LEVEL_GRIDS[-1], box[3] - box[1] < LEVEL_GRIDS[-1])
    box = tf.where(too_small, tf.stack([0, 0, width, height]), box)
    x0, y0 = tf.cast(box[0], tf.float64), tf.cast(box[1], tf.float64)
    w = tf.cast(box[2] - box[0], tf.float64)
    h = tf.cast(box[3] - box[1], tf.float64)
    cells = []
    for n in LEVEL_GRIDS:
        edges = tf.cast(tf.range(n + 1), tf.float64)
        xs = x0 + tf.round(edges * w / n)  # [n + 1]
        ys = y0 + tf.round(edges * h / n)
        r, c = tf.meshgrid(tf.range(n), tf.range(n), indexing="ij")
        r, c = tf.reshape(r, [-1]), tf.reshape(c, [-1])
        cells.append(tf.stack([tf.gather(xs, c), tf.gather(ys, r), tf.gather(xs, c + 1), tf.gather(ys, r + 1)], 1))
    cells = tf.concat(cells, 0)  # [55, 4] float64
    nx1, nx2 = (cells[:, 0] - x0) / w, (cells[:, 2] - x0) / w
    ny1, ny2 = (cells[:, 1] - y0) / h, (cells[:, 3] - y0) / h
    positions = tf.stack([nx1, nx2, ny1, ny2, (nx2 - nx1) * (ny2 - ny1)], 1)
    return tf.cast(cells, tf.int32), tf.cast(positions, tf.float32), box


def kaleido_crops(image, boxes, crop_size):
    """The crops of `boxes` (int32 [N, 4]) each resized PIL-exactly to uint8 [N, S, S, 3]."""

    def one(cell):
        crop = image[cell[1] : cell[3], cell[0] : cell[2]]
        return pil_bilinear_resize(crop, crop_size, crop_size)

    out = tf.map_fn(one, boxes, fn_output_signature=tf.TensorSpec([crop_size, crop_size, 3], tf.uint8))
    return tf.ensure_shape(out, [NUM_PATCHES if boxes.shape[0] == NUM_PATCHES else None, crop_size, crop_size, 3])
