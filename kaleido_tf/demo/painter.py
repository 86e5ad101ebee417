"""Draws one product view: shapes given in canonical coordinates, patterned fabric, recorded part boxes.

Every product is described once in a canonical unit square ([0, 1] x [0, 1], x to the right, y down,
the product roughly centred). A view maps that square onto the picture with a scale about the centre,
a shift and an optional horizontal flip. `Painter` applies the view to every shape it draws and records
the canonical bounding box of each shape under a part name ("garment", "sleeve", "pocket", ...), so the
boxes of the visible parts are known exactly and can be mapped into any view with `Painter.view_box`.
"""

import numpy as np
from PIL import Image, ImageDraw

METAL = (178, 178, 186)  # zips, studs, chains
GOLD = (204, 168, 64)  # buckles, clasps
LIGHT_INK = (246, 246, 240)  # contrast colour on dark fabric
DARK_INK = (42, 42, 52)  # contrast colour on light fabric


def luminance(colour):
    """Perceived brightness of an RGB triple, 0..255."""
    r, g, b = colour
    return 0.299 * r + 0.587 * g + 0.114 * b


def contrast_colour(colour):
    """The ink that stands out on `colour`: near-white on dark fabric, near-black on light fabric."""
    return DARK_INK if luminance(colour) > 150 else LIGHT_INK


def shade(colour, factor):
    """A darker tone of `colour` (factor < 1); very dark colours are lightened instead so the tone shows."""
    if luminance(colour) < 60:
        return tuple(int(round(c + (255 - c) * (1.0 - factor) * 0.6)) for c in colour)
    return tuple(int(round(c * factor)) for c in colour)


def _bounds(points, pad=0.0):
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return (min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad)


def fabric_image(size, scale, origin, colour, pattern, rng, pattern_colour=None):
    """A full-canvas RGB image of the fabric: `colour` with `pattern` drawn in `pattern_colour`.

    `pattern_colour` defaults to the contrast colour of `colour`. `scale` sets the pattern period
    (it follows the product's size in the view) and `origin` (pixels) anchors the pattern to the
    product so it moves with it. `rng` (numpy Generator) jitters the floral motif.
    Patterns: "solid", "striped", "polka dot", "checked", "floral".
    """
    base = np.array(colour, np.float32)
    ink = np.array(contrast_colour(colour) if pattern_colour is None else pattern_colour, np.float32)
    ox, oy = origin
    if pattern == "solid":
        return Image.new("RGB", (size, size), tuple(colour))
    if pattern in ("striped", "checked"):
        coords = np.arange(size, dtype=np.float32)
        if pattern == "striped":
            period = 0.085 * size * scale
            rows = (((coords - oy) / period) % 1.0) < 0.42  # [S]
            weight = np.repeat(rows[:, None], size, axis=1).astype(np.float32)  # [S, S]
        else:
            period = 0.11 * size * scale
            rows = ((((coords - oy) / period) % 1.0) < 0.5).astype(np.float32)  # [S]
            cols = ((((coords - ox) / period) % 1.0) < 0.5).astype(np.float32)  # [S]
            weight = 0.5 * rows[:, None] + 0.5 * cols[None, :]  # [S, S] gingham: crossings full ink
        pixels = base[None, None, :] + (ink - base)[None, None, :] * weight[:, :, None]  # [S, S, 3]
        return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")
    image = Image.new("RGB", (size, size), tuple(colour))
    draw = ImageDraw.Draw(image)
    ink_t = tuple(int(v) for v in ink)
    if pattern == "polka dot":
        period = 0.095 * size * scale
        radius = 0.24 * period
        n = int(size / period) + 3
        for j in range(-1, n):
            for i in range(-1, n):
                cx = ox % period + (i + 0.5 * (j % 2)) * period
                cy = oy % period + j * period
                draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=ink_t)
        return image
    if pattern == "floral":
        period = 0.13 * size * scale
        petal = 0.13 * period
        n = int(size / period) + 3
        jitter = rng.uniform(-0.18, 0.18, size=(n + 1, n + 1, 2)) * period  # [n+1, n+1, 2]
        heart = GOLD if luminance(ink_t) > 150 else (236, 200, 70)
        for j in range(-1, n):
            for i in range(-1, n):
                cx = ox % period + (i + 0.5 * (j % 2)) * period + jitter[j + 1, i + 1, 0]
                cy = oy % period + j * period + jitter[j + 1, i + 1, 1]
                for k in range(5):
                    angle = 2.0 * np.pi * k / 5.0
                    px = cx + 1.25 * petal * np.cos(angle)
                    py = cy + 1.25 * petal * np.sin(angle)
                    draw.ellipse((px - petal, py - petal, px + petal, py + petal), fill=ink_t)
                draw.ellipse((cx - 0.7 * petal, cy - 0.7 * petal, cx + 0.7 * petal, cy + 0.7 * petal), fill=heart)
        return image
    raise ValueError(f"unknown pattern {pattern!r}; expected one of solid, striped, polka dot, checked, floral")


class Painter:
    """Draws shapes given in canonical coordinates onto one supersampled view and records part boxes.

    Args:
      size: side of the (square) canvas in pixels.
      scale: size of the product in the view relative to the canonical square.
      shift_x, shift_y: offset of the product centre, in fractions of the picture side.
      flip: mirror the product horizontally.
      background: RGB of the plain backdrop.
      colour: RGB of the product's main fabric.
      pattern: fabric pattern name (see `fabric_image`).
      rng: numpy Generator for the pattern's jitter.
      pattern_colour: RGB of the pattern (default: the contrast colour of `colour`).
    """

    def __init__(self, size, scale, shift_x, shift_y, flip, background, colour, pattern, rng, pattern_colour=None):
        self.size = int(size)
        self.scale = float(scale)
        self.shift_x = float(shift_x)
        self.shift_y = float(shift_y)
        self.flip = bool(flip)
        self.colour = tuple(colour)
        self.ink = contrast_colour(colour)
        self.outline = shade(colour, 0.55)
        self.image = Image.new("RGB", (self.size, self.size), tuple(background))
        self.draw = ImageDraw.Draw(self.image)
        self.fabric = fabric_image(self.size, self.scale, self._xy(0.0, 0.0), self.colour, pattern, rng, pattern_colour)
        self.boxes = {}  # part name -> list of canonical (x1, y1, x2, y2)

    # ----- coordinates -------------------------------------------------------------------------
    def _norm(self, u, v):
        """Canonical point -> normalised picture coordinates (may fall outside [0, 1])."""
        if self.flip:
            u = 1.0 - u
        return 0.5 + (u - 0.5) * self.scale + self.shift_x, 0.5 + (v - 0.5) * self.scale + self.shift_y

    def _xy(self, u, v):
        x, y = self._norm(u, v)
        return x * self.size, y * self.size

    def _points(self, points):
        return [self._xy(u, v) for u, v in points]

    def _box(self, box):
        x1, y1 = self._xy(box[0], box[1])
        x2, y2 = self._xy(box[2], box[3])
        return [min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)]

    def _width(self, width):
        return max(1, int(round(width * self.size * self.scale)))

    def view_box(self, box):
        """Canonical box -> [x1, y1, x2, y2] in normalised picture coordinates, clipped to [0, 1]."""
        x1, y1 = self._norm(box[0], box[1])
        x2, y2 = self._norm(box[2], box[3])
        out = [min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)]
        return [min(1.0, max(0.0, c)) for c in out]

    def mark(self, part, box):
        """Records a canonical box under `part`."""
        self.boxes.setdefault(part, []).append(tuple(float(c) for c in box))

    def product_box(self):
        """Canonical union of every recorded box: the whole product."""
        allb = [b for boxes in self.boxes.values() for b in boxes]
        return (min(b[0] for b in allb), min(b[1] for b in allb), max(b[2] for b in allb), max(b[3] for b in allb))

    # ----- fabric (patterned) shapes -------------------------------------------------------------
    def _paste_fabric(self, draw_mask):
        mask = Image.new("L", self.image.size, 0)
        draw_mask(ImageDraw.Draw(mask))
        self.image.paste(self.fabric, (0, 0), mask)

    def fabric_polygon(self, points, part="garment", outline=True):
        pts = self._points(points)
        self._paste_fabric(lambda d: d.polygon(pts, fill=255))
        if outline:
            self.draw.polygon(pts, outline=self.outline, width=self._width(0.008))
        self.mark(part, _bounds(points))

    def fabric_ellipse(self, box, part="garment", outline=True):
        pbox = self._box(box)
        self._paste_fabric(lambda d: d.ellipse(pbox, fill=255))
        if outline:
            self.draw.ellipse(pbox, outline=self.outline, width=self._width(0.008))
        self.mark(part, box)

    def fabric_rounded(self, box, radius, part="garment", outline=True):
        pbox = self._box(box)
        r = radius * self.size * self.scale
        self._paste_fabric(lambda d: d.rounded_rectangle(pbox, radius=r, fill=255))
        if outline:
            self.draw.rounded_rectangle(pbox, radius=r, outline=self.outline, width=self._width(0.008))
        self.mark(part, box)

    def fabric_line(self, points, width, part="garment"):
        """A thick polyline cut from the fabric (straps); no outline."""
        pts = self._points(points)
        w = self._width(width)
        self._paste_fabric(lambda d: d.line(pts, fill=255, width=w, joint="curve"))
        self.mark(part, _bounds(points, pad=width / 2.0))

    # ----- plain-coloured shapes -----------------------------------------------------------------
    def polygon(self, points, fill, part="garment", outline=None, width=0.008):
        pts = self._points(points)
        self.draw.polygon(pts, fill=fill, outline=outline, width=self._width(width) if outline else 1)
        self.mark(part, _bounds(points))

    def ellipse(self, box, fill, part="garment", outline=None, width=0.008):
        self.draw.ellipse(self._box(box), fill=fill, outline=outline, width=self._width(width) if outline else 1)
        self.mark(part, box)

    def circle(self, cx, cy, r, fill, part="garment", outline=None):
        self.ellipse((cx - r, cy - r, cx + r, cy + r), fill, part=part, outline=outline, width=0.005)

    def rectangle(self, box, fill, part="garment", outline=None, width=0.008):
        self.draw.rectangle(self._box(box), fill=fill, outline=outline, width=self._width(width) if outline else 1)
        self.mark(part, box)

    def rounded(self, box, radius, fill, part="garment", outline=None, width=0.008):
        r = radius * self.size * self.scale
        self.draw.rounded_rectangle(
            self._box(box), radius=r, fill=fill, outline=outline, width=self._width(width) if outline else 1
        )
        self.mark(part, box)

    def line(self, points, fill, width, part="garment"):
        self.draw.line(self._points(points), fill=fill, width=self._width(width), joint="curve")
        self.mark(part, _bounds(points, pad=width / 2.0))

    def arc(self, box, start, end, fill, width, part="garment"):
        """Arc of the ellipse inscribed in `box`, from `start` to `end` degrees clockwise from 3 o'clock."""
        # A horizontal flip maps the angle t to 180 - t and reverses the direction of travel.
        drawn = (180.0 - end, 180.0 - start) if self.flip else (start, end)
        self.draw.arc(self._box(box), drawn[0], drawn[1], fill=fill, width=self._width(width))
        angles = np.radians(np.linspace(start, end, 33))
        cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
        rx, ry = (box[2] - box[0]) / 2.0, (box[3] - box[1]) / 2.0
        points = list(zip(cx + rx * np.cos(angles), cy + ry * np.sin(angles)))
        self.mark(part, _bounds(points, pad=width / 2.0))
