"""Taxonomy of the synthetic demo catalog: colours, patterns, categories, subcategories and their drawings.

Each subcategory has a silhouette drawn from polygons and ellipses in canonical coordinates (see
`painter.Painter`), the attributes that vary within it (sleeve, length, details) and the words used in
its captions. A drawing function takes a `Painter` and the product's attributes and names each part it
draws ("garment", "sleeve", "pocket", "logo", ...) so captions can be aligned to image regions.
"""

import dataclasses
from collections.abc import Callable

from kaleido_tf.demo.painter import GOLD, METAL, luminance, shade

# Named colours (RGB), chosen to stay apart from one another and from the light backgrounds' tint.
COLOURS = {
    "black": (30, 30, 34),
    "white": (250, 250, 248),
    "grey": (128, 128, 132),
    "red": (200, 32, 42),
    "pink": (238, 140, 182),
    "orange": (240, 128, 32),
    "yellow": (244, 208, 48),
    "green": (40, 138, 62),
    "navy blue": (26, 36, 98),
    "light blue": (128, 180, 232),
    "purple": (118, 58, 160),
    "brown": (118, 74, 40),
    "beige": (214, 192, 154),
}

PATTERNS = ("solid", "striped", "polka dot", "checked", "floral")


def pattern_colours(colour):
    """Named colours that stand out as a pattern on the named `colour` (brightness differs by >= 70)."""
    base = luminance(COLOURS[colour])
    return tuple(name for name, rgb in COLOURS.items() if abs(luminance(rgb) - base) >= 70)


@dataclasses.dataclass(frozen=True)
class Detail:
    """An optional visible feature: `name` in the attributes, `phrases` for captions (one is chosen)."""

    name: str
    phrases: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Subcategory:
    """One product type.

    Attributes:
      name: subcategory label, also present in every caption noun.
      category: category label.
      draw: function(painter, attributes) drawing the product in canonical coordinates.
      nouns: caption nouns; each contains `name`.
      materials: fabric names that may appear in captions (not drawn).
      details: optional features; a product shows a subset.
      sleeves: possible sleeve values ("short", "long", "sleeveless"); empty where not applicable.
      lengths: possible length words (drawn as different hem lines); empty where fixed.
      plural: the noun is plural ("jeans", "boots"): captions say "a pair of ..." or no article.
      exclusive: groups of details of which at most one is shown (a jacket closes with a zip or buttons).
    """

    name: str
    category: str
    draw: Callable
    nouns: tuple[str, ...]
    materials: tuple[str, ...]
    details: tuple[Detail, ...] = ()
    sleeves: tuple[str, ...] = ()
    lengths: tuple[str, ...] = ()
    plural: bool = False
    exclusive: tuple[tuple[str, ...], ...] = ()


def _mirror(points):
    """Mirrors a left-side outline onto the right side (about x = 0.5), keeping the drawing order."""
    return [(1.0 - u, v) for u, v in points]


# ----- shared garment pieces ---------------------------------------------------------------------------
def _sleeves(p, x0, x1, y_sh, kind, cuff_y, cuffs=False):
    """Two sleeves hanging from shoulders at x0 / x1 (height y_sh); long ones end at cuff_y."""
    if kind == "short":
        left = [(x0 + 0.02, y_sh + 0.01), (x0 - 0.12, y_sh + 0.12), (x0 - 0.06, y_sh + 0.21), (x0 + 0.005, y_sh + 0.15)]
    elif kind == "long":
        left = [
            (x0 + 0.02, y_sh + 0.01),
            (x0 - 0.09, y_sh + 0.09),
            (x0 - 0.14, cuff_y - 0.02),
            (x0 - 0.055, cuff_y),
            (x0 + 0.005, y_sh + 0.2),
        ]
    else:
        return
    for side in (left, _mirror(left)):
        p.fabric_polygon(side, part="sleeve")
        if kind == "long" and cuffs:
            a, b = side[2], side[3]
            p.line([(a[0], a[1] - 0.03), (b[0], b[1] - 0.03)], shade(p.colour, 0.7), 0.02, part="sleeve")


def _top_body(p, x0, x1, y_sh, hem, neck_w=0.08, neck_d=0.05):
    pts = [
        (x0, y_sh + 0.03),
        (0.5 - neck_w, y_sh),
        (0.5 - neck_w * 0.5, y_sh + neck_d * 0.85),
        (0.5, y_sh + neck_d),
        (0.5 + neck_w * 0.5, y_sh + neck_d * 0.85),
        (0.5 + neck_w, y_sh),
        (x1, y_sh + 0.03),
        (x1, hem),
        (x0, hem),
    ]
    p.fabric_polygon(pts)


def _pocket(p, box):
    p.rectangle(box, shade(p.colour, 0.8), part="pocket", outline=p.outline, width=0.006)


def _logo(p, cx, cy, r):
    p.circle(cx, cy, r, p.ink, part="logo", outline=shade(p.ink, 0.8))
    p.circle(cx, cy, r * 0.45, p.colour, part="logo")


def _buttons(p, x, y0, y1, n, r=0.016):
    for k in range(n):
        y = y0 + (y1 - y0) * k / max(1, n - 1)
        p.circle(x, y, r, p.ink, part="buttons", outline=p.outline)


def _zip(p, x, y0, y1):
    p.line([(x, y0), (x, y1)], METAL, 0.014, part="zip")
    p.circle(x, y0 + 0.02, 0.014, METAL, part="zip")


def _belt(p, x0, x1, y0, y1):
    p.rectangle((x0, y0, x1, y1), shade(p.colour, 0.5), part="belt")
    cx = (x0 + x1) / 2.0
    h = y1 - y0
    p.rectangle((cx - 0.6 * h, y0 - 0.1 * h, cx + 0.6 * h, y1 + 0.1 * h), None, part="belt", outline=GOLD, width=0.01)


def _drawstrings(p, x_left, x_right, y0, y1):
    for x, dx in ((x_left, -0.01), (x_right, 0.01)):
        p.line([(x, y0), (x + dx, y1)], p.ink, 0.01, part="drawstring")
        p.circle(x + dx, y1, 0.012, p.ink, part="drawstring")


def _rib(p, box, n):
    """A ribbed band (hem, cuff, waistband): darker tone with vertical rib lines."""
    p.rectangle(box, shade(p.colour, 0.82), outline=p.outline, width=0.005)
    for k in range(1, n):
        x = box[0] + (box[2] - box[0]) * k / n
        p.line([(x, box[1]), (x, box[3])], shade(p.colour, 0.65), 0.004)


# ----- tops ---------------------------------------------------------------------------------------------
def _draw_tshirt(p, a):
    _sleeves(p, 0.3, 0.7, 0.2, a["sleeve"], 0.8)
    _top_body(p, 0.3, 0.7, 0.2, 0.84)
    if "pocket" in a["details"]:
        _pocket(p, (0.34, 0.3, 0.44, 0.4))
    if "logo" in a["details"]:
        _logo(p, 0.5, 0.47, 0.06)


def _draw_shirt(p, a):
    _sleeves(p, 0.3, 0.7, 0.2, a["sleeve"], 0.8, cuffs=True)
    _top_body(p, 0.3, 0.7, 0.2, 0.86, neck_w=0.07, neck_d=0.07)
    left_collar = [(0.42, 0.18), (0.5, 0.27), (0.45, 0.32), (0.4, 0.21)]
    for side in (left_collar, _mirror(left_collar)):
        p.fabric_polygon(side, part="collar")
    p.line([(0.5, 0.27), (0.5, 0.86)], p.outline, 0.006)
    for k in range(5):
        p.circle(0.5, 0.34 + 0.11 * k, 0.012, p.ink, outline=p.outline)
    if "pocket" in a["details"]:
        _pocket(p, (0.35, 0.33, 0.45, 0.43))
    if "logo" in a["details"]:
        _logo(p, 0.6, 0.37, 0.035)


def _draw_hoodie(p, a):
    p.fabric_ellipse((0.36, 0.05, 0.64, 0.31), part="hood")
    p.ellipse((0.42, 0.12, 0.58, 0.27), shade(p.colour, 0.55), part="hood")
    _sleeves(p, 0.28, 0.72, 0.2, "long", 0.82, cuffs=True)
    _top_body(p, 0.28, 0.72, 0.2, 0.84, neck_w=0.1, neck_d=0.06)
    _rib(p, (0.28, 0.79, 0.72, 0.84), 14)
    _drawstrings(p, 0.46, 0.54, 0.26, 0.4)
    if "pocket" in a["details"]:
        p.polygon(
            [(0.36, 0.58), (0.64, 0.58), (0.69, 0.76), (0.31, 0.76)],
            shade(p.colour, 0.8),
            part="pocket",
            outline=p.outline,
        )
    if "zip" in a["details"]:
        _zip(p, 0.5, 0.26, 0.84)
    if "logo" in a["details"]:
        _logo(p, 0.6 if "zip" in a["details"] else 0.5, 0.47, 0.05)


def _draw_sweater(p, a):
    _sleeves(p, 0.29, 0.71, 0.2, "long", 0.82, cuffs=True)
    _top_body(p, 0.29, 0.71, 0.2, 0.84, neck_w=0.09, neck_d=0.05)
    p.arc((0.41, 0.15, 0.59, 0.25), 0, 180, shade(p.colour, 0.7), 0.025)  # crew neck band
    _rib(p, (0.29, 0.78, 0.71, 0.84), 16)
    if "buttons" in a["details"]:
        p.line([(0.5, 0.25), (0.5, 0.78)], p.outline, 0.006)
        _buttons(p, 0.5, 0.3, 0.72, 5)
    if "logo" in a["details"]:
        _logo(p, 0.38 if "buttons" in a["details"] else 0.5, 0.45, 0.055)


def _draw_tank_top(p, a):
    for strap in ((0.36, 0.13, 0.41, 0.3), (0.59, 0.13, 0.64, 0.3)):
        p.fabric_polygon([(strap[0], strap[1]), (strap[2], strap[1]), (strap[2], strap[3]), (strap[0], strap[3])])
    body = [
        (0.36, 0.28),
        (0.41, 0.28),
        (0.5, 0.4),
        (0.59, 0.28),
        (0.64, 0.28),
        (0.645, 0.37),
        (0.68, 0.46),
        (0.68, 0.84),
        (0.32, 0.84),
        (0.32, 0.46),
        (0.355, 0.37),
    ]
    p.fabric_polygon(body)
    if "pocket" in a["details"]:
        _pocket(p, (0.36, 0.45, 0.45, 0.55))
    if "logo" in a["details"]:
        _logo(p, 0.55, 0.6, 0.055)


# ----- dresses -------------------------------------------------------------------------------------------
def _draw_dress(p, a, hem, flare):
    skirt = [(0.38, 0.42), (0.62, 0.42), (0.5 + flare, hem), (0.5 - flare, hem)]
    if a["sleeve"] == "sleeveless":
        for strap in ((0.39, 0.1, 0.43, 0.22), (0.57, 0.1, 0.61, 0.22)):
            p.fabric_polygon([(strap[0], strap[1]), (strap[2], strap[1]), (strap[2], strap[3]), (strap[0], strap[3])])
    else:
        _sleeves(p, 0.39, 0.61, 0.2, a["sleeve"], 0.6)
    p.fabric_polygon(skirt)
    p.fabric_polygon([(0.385, 0.2), (0.45, 0.2), (0.5, 0.28), (0.55, 0.2), (0.615, 0.2), (0.625, 0.43), (0.375, 0.43)])
    if "pocket" in a["details"]:
        for box in ((0.37, 0.5, 0.43, 0.56), (0.57, 0.5, 0.63, 0.56)):
            _pocket(p, box)
    if "buttons" in a["details"]:
        _buttons(p, 0.5, 0.31, 0.39, 3, r=0.013)
    if "belt" in a["details"]:
        _belt(p, 0.372, 0.628, 0.4, 0.45)


def _draw_mini_dress(p, a):
    _draw_dress(p, a, hem=0.68, flare=0.25)


def _draw_maxi_dress(p, a):
    _draw_dress(p, a, hem=0.95, flare=0.3)


# ----- skirts --------------------------------------------------------------------------------------------
def _skirt_common(p, a, body, pockets=True):
    p.fabric_polygon(body)
    p.fabric_polygon([(0.32, 0.2), (0.68, 0.2), (0.68, 0.26), (0.32, 0.26)])  # waistband
    if "belt" in a["details"]:
        _belt(p, 0.32, 0.68, 0.2, 0.26)
    if "buttons" in a["details"]:
        _buttons(p, 0.5, 0.3, 0.45, 3)
    if pockets and "pocket" in a["details"]:
        for box in ((0.33, 0.3, 0.42, 0.39), (0.58, 0.3, 0.67, 0.39)):
            _pocket(p, box)


def _draw_mini_skirt(p, a):
    _skirt_common(p, a, [(0.32, 0.26), (0.68, 0.26), (0.77, 0.6), (0.23, 0.6)])


def _draw_pleated_skirt(p, a):
    hem = 0.78 if a["length"] == "knee-length" else 0.92
    body = [(0.32, 0.26), (0.68, 0.26), (0.8, hem), (0.2, hem)]
    p.fabric_polygon(body)
    for k in range(1, 8):
        t = k / 8.0
        p.line([(0.32 + 0.36 * t, 0.26), (0.2 + 0.6 * t, hem)], p.outline, 0.006)
    p.fabric_polygon([(0.32, 0.2), (0.68, 0.2), (0.68, 0.26), (0.32, 0.26)])
    if "belt" in a["details"]:
        _belt(p, 0.32, 0.68, 0.2, 0.26)
    if "buttons" in a["details"]:
        _buttons(p, 0.63, 0.3, 0.42, 3)


def _draw_pencil_skirt(p, a):
    _skirt_common(p, a, [(0.32, 0.26), (0.68, 0.26), (0.7, 0.5), (0.665, 0.85), (0.335, 0.85), (0.3, 0.5)])
    p.line([(0.5, 0.74), (0.5, 0.85)], p.outline, 0.008)  # slit


# ----- trousers ------------------------------------------------------------------------------------------
def _legs(p, left):
    for side in (left, _mirror(left)):
        p.fabric_polygon(side)
    p.fabric_polygon([(0.3, 0.12), (0.7, 0.12), (0.7, 0.18), (0.3, 0.18)])  # waistband


def _trouser_details(p, a, pocket_drop):
    if "pocket" in a["details"]:
        left = [(0.31, 0.18), (0.41, 0.18), (0.31, 0.18 + pocket_drop)]
        for side in (left, _mirror(left)):
            p.polygon(side, shade(p.colour, 0.75), part="pocket", outline=p.outline, width=0.006)
    if "belt" in a["details"]:
        _belt(p, 0.3, 0.7, 0.12, 0.18)
    if "drawstring" in a["details"]:
        _drawstrings(p, 0.47, 0.53, 0.15, 0.3)


def _draw_jeans(p, a):
    hem = 0.92 if a["length"] == "full-length" else 0.76
    _legs(p, [(0.3, 0.18), (0.5, 0.18), (0.5, 0.34), (0.485, hem), (0.32, hem)])
    p.line([(0.5, 0.18), (0.5, 0.34)], p.outline, 0.008)
    p.line([(0.455, 0.19), (0.455, 0.3), (0.5, 0.34)], GOLD, 0.005)  # fly stitching
    for x in (0.4, 0.6):  # side seams in top-stitch colour
        p.line([(x, 0.36), (x + (0.015 if x < 0.5 else -0.015), hem - 0.02)], GOLD, 0.004)
    if "rips" in a["details"]:
        y = 0.5 if hem > 0.8 else 0.46
        for x in (0.41, 0.59):
            for k in range(3):
                yy = y + 0.025 * k
                p.line([(x - 0.045, yy), (x + 0.045, yy)], p.ink, 0.01, part="rips")
    _trouser_details(p, a, 0.09)


def _draw_shorts(p, a):
    _legs(p, [(0.3, 0.18), (0.5, 0.18), (0.5, 0.3), (0.49, 0.5), (0.26, 0.5)])
    p.line([(0.5, 0.18), (0.5, 0.3)], p.outline, 0.008)
    _trouser_details(p, a, 0.08)


def _draw_joggers(p, a):
    _legs(p, [(0.3, 0.18), (0.5, 0.18), (0.5, 0.34), (0.465, 0.86), (0.355, 0.86)])
    _rib(p, (0.3, 0.12, 0.7, 0.18), 20)
    for cuff in ((0.355, 0.86, 0.465, 0.92), (0.535, 0.86, 0.645, 0.92)):
        _rib(p, cuff, 5)
    _trouser_details(p, a, 0.1)
    if "logo" in a["details"]:
        _logo(p, 0.38, 0.3, 0.035)


# ----- outerwear -----------------------------------------------------------------------------------------
def _coat_like(p, a, hem, flare, lapel_depth):
    _sleeves(p, 0.29, 0.71, 0.2, "long", min(hem, 0.78), cuffs=True)
    body = [
        (0.29, 0.23),
        (0.43, 0.19),
        (0.5, 0.3),
        (0.57, 0.19),
        (0.71, 0.23),
        (0.71 + flare, hem),
        (0.29 - flare, hem),
    ]
    p.fabric_polygon(body)
    left_lapel = [(0.43, 0.19), (0.5, lapel_depth), (0.46, lapel_depth + 0.02), (0.39, 0.3)]
    for side in (left_lapel, _mirror(left_lapel)):
        p.polygon(side, shade(p.colour, 0.82), part="collar", outline=p.outline, width=0.006)
    p.line([(0.5, lapel_depth), (0.5, hem)], p.outline, 0.007)


def _draw_jacket(p, a):
    hem = 0.68
    _coat_like(p, a, hem, 0.0, 0.38)
    _rib(p, (0.29, hem - 0.04, 0.71, hem), 14)
    if "pocket" in a["details"]:
        for box in ((0.33, 0.5, 0.44, 0.58), (0.56, 0.5, 0.67, 0.58)):
            _pocket(p, box)
    if "zip" in a["details"]:
        _zip(p, 0.5, 0.38, hem)
    if "buttons" in a["details"]:
        _buttons(p, 0.53, 0.42, 0.6, 3)
    if "logo" in a["details"]:
        _logo(p, 0.39, 0.38, 0.03)


def _draw_coat(p, a):
    hem = 0.84 if a["length"] == "knee-length" else 0.95
    _coat_like(p, a, hem, 0.04, 0.42)
    if "pocket" in a["details"]:
        for box in ((0.32, 0.6, 0.43, 0.66), (0.57, 0.6, 0.68, 0.66)):
            _pocket(p, box)
    if "buttons" in a["details"]:
        for x in (0.45, 0.55):
            _buttons(p, x, 0.44, 0.58, 3)
    if "belt" in a["details"]:
        _belt(p, 0.285, 0.715, 0.5, 0.55)


# ----- bags ----------------------------------------------------------------------------------------------
def _draw_tote(p, a):
    for box in ((0.33, 0.18, 0.47, 0.66), (0.53, 0.18, 0.67, 0.66)):
        p.arc(box, 180, 360, shade(p.colour, 0.6), 0.03, part="handles")
    p.fabric_polygon([(0.22, 0.42), (0.78, 0.42), (0.74, 0.88), (0.26, 0.88)])
    if "pocket" in a["details"]:
        _pocket(p, (0.37, 0.6, 0.63, 0.8))
    if "logo" in a["details"]:
        _logo(p, 0.5, 0.51, 0.045)


def _draw_backpack(p, a):
    for strap in ((0.22, 0.28, 0.28, 0.74), (0.72, 0.28, 0.78, 0.74)):
        p.rounded(strap, 0.02, shade(p.colour, 0.6), part="straps", outline=p.outline, width=0.005)
    p.arc((0.43, 0.08, 0.57, 0.3), 180, 360, shade(p.colour, 0.6), 0.025, part="handle")
    p.fabric_rounded((0.27, 0.18, 0.73, 0.88), 0.09)
    if "pocket" in a["details"]:
        p.rounded((0.34, 0.56, 0.66, 0.83), 0.04, shade(p.colour, 0.8), part="pocket", outline=p.outline, width=0.006)
    if "zip" in a["details"]:
        p.arc((0.33, 0.26, 0.67, 0.5), 180, 360, METAL, 0.012, part="zip")
    if "logo" in a["details"]:
        _logo(p, 0.5, 0.48, 0.04)


def _draw_clutch(p, a):
    if "chain" in a["details"]:
        box = (0.2, 0.16, 0.8, 0.64)
        p.arc(box, 180, 360, GOLD, 0.012, part="chain")
    p.fabric_polygon([(0.14, 0.4), (0.86, 0.4), (0.86, 0.68), (0.14, 0.68)])
    p.polygon([(0.14, 0.4), (0.86, 0.4), (0.5, 0.58)], shade(p.colour, 0.82), outline=p.outline, width=0.006)
    if "logo" in a["details"]:
        p.circle(0.5, 0.57, 0.035, GOLD, part="logo", outline=shade(GOLD, 0.7))


# ----- shoes (side view, toe to the left) ----------------------------------------------------------------
def _sole_colour(p):
    return (58, 58, 60) if p.colour[0] + p.colour[1] + p.colour[2] > 560 else (240, 240, 236)


def _draw_sneakers(p, a):
    p.fabric_polygon(
        [(0.12, 0.62), (0.2, 0.52), (0.4, 0.47), (0.52, 0.37), (0.78, 0.35), (0.86, 0.42), (0.88, 0.66), (0.12, 0.68)]
    )
    p.rounded(
        (0.09, 0.65, 0.91, 0.76), 0.04, _sole_colour(p), part="sole", outline=shade(_sole_colour(p), 0.7), width=0.006
    )
    for k in range(4):
        x = 0.4 + 0.045 * k
        p.line([(x, 0.47 - 0.03 * k), (x + 0.05, 0.5 - 0.03 * k)], p.ink, 0.012, part="laces")
    if "logo" in a["details"]:
        p.polygon([(0.5, 0.62), (0.76, 0.48), (0.79, 0.52), (0.55, 0.64)], p.ink, part="logo")


def _draw_boots(p, a):
    p.fabric_polygon([(0.42, 0.12), (0.7, 0.12), (0.71, 0.8), (0.12, 0.8), (0.12, 0.69), (0.2, 0.61), (0.42, 0.56)])
    p.rectangle((0.1, 0.8, 0.73, 0.85), (52, 44, 40), part="sole")
    p.rectangle((0.58, 0.85, 0.72, 0.92), (52, 44, 40), part="sole")
    if "zip" in a["details"]:
        _zip(p, 0.66, 0.15, 0.7)
    if "buckle" in a["details"]:
        p.rectangle((0.42, 0.3, 0.7, 0.36), shade(p.colour, 0.5), part="buckle")
        p.rectangle((0.5, 0.285, 0.56, 0.375), None, part="buckle", outline=GOLD, width=0.01)


def _draw_sandals(p, a):
    thick = 0.09 if "platform" in a["details"] else 0.04
    p.polygon(
        [(0.1, 0.76 - thick), (0.9, 0.74 - thick), (0.9, 0.76), (0.1, 0.78)],
        shade(p.colour, 0.7),
        part="platform" if "platform" in a["details"] else "sole",
        outline=p.outline,
        width=0.006,
    )
    top = 0.76 - thick
    p.fabric_line([(0.15, top), (0.2, top - 0.1), (0.3, top - 0.13), (0.4, top - 0.1), (0.44, top)], 0.05)  # toe
    p.fabric_line([(0.5, top), (0.54, top - 0.12), (0.62, top - 0.12), (0.66, top)], 0.04)  # instep
    p.fabric_line([(0.76, top), (0.77, top - 0.22)], 0.045)  # heel strap
    p.fabric_line([(0.62, top - 0.19), (0.88, top - 0.23)], 0.035)  # ankle strap
    if "buckle" in a["details"]:
        p.rectangle((0.8, top - 0.26, 0.86, top - 0.19), None, part="buckle", outline=GOLD, width=0.012)


# ----- accessories ---------------------------------------------------------------------------------------
def _draw_hat(p, a):
    p.fabric_ellipse((0.1, 0.52, 0.9, 0.72))  # brim
    p.fabric_polygon([(0.31, 0.6), (0.33, 0.34), (0.41, 0.27), (0.59, 0.27), (0.67, 0.34), (0.69, 0.6)])
    if "band" in a["details"]:
        p.polygon([(0.315, 0.52), (0.685, 0.52), (0.69, 0.6), (0.31, 0.6)], p.ink, part="band")
    if "logo" in a["details"]:
        _logo(p, 0.5, 0.41, 0.05)


def _draw_scarf(p, a):
    p.fabric_polygon([(0.5, 0.22), (0.63, 0.2), (0.61, 0.76), (0.5, 0.78)])
    p.fabric_polygon([(0.37, 0.2), (0.5, 0.22), (0.48, 0.9), (0.35, 0.9)])
    p.fabric_rounded((0.3, 0.1, 0.7, 0.26), 0.07)
    if "fringe" in a["details"]:
        for x0, x1, y in ((0.35, 0.48, 0.9), (0.5, 0.61, 0.77)):
            for k in range(6):
                x = x0 + (x1 - x0) * (k + 0.5) / 6
                p.line([(x, y), (x, y + 0.06)], shade(p.colour, 0.7), 0.01, part="fringe")
    if "logo" in a["details"]:
        _logo(p, 0.415, 0.7, 0.035)


def _draw_belt(p, a):
    p.fabric_rounded((0.06, 0.44, 0.94, 0.56), 0.02)
    p.rectangle((0.09, 0.41, 0.21, 0.59), None, part="buckle", outline=METAL, width=0.016)
    p.line([(0.15, 0.5), (0.23, 0.5)], METAL, 0.01, part="buckle")
    for x in (0.7, 0.76, 0.82):
        p.circle(x, 0.5, 0.012, shade(p.colour, 0.4))
    if "studs" in a["details"]:
        for k in range(7):
            p.circle(0.3 + 0.05 * k, 0.5, 0.013, METAL, part="studs")


# ----- the taxonomy --------------------------------------------------------------------------------------
POCKET_CHEST = Detail("pocket", ("a chest pocket", "a breast pocket", "a pocket"))
LOGO = Detail("logo", ("a logo", "a printed logo", "a small logo"))
BUTTONS = Detail("buttons", ("buttons", "a button front", "button details"))
ZIP = Detail("zip", ("a zip", "a front zip", "a zip fastening"))
BELT = Detail("belt", ("a belt", "a matching belt", "a belted waist"))
POCKETS = Detail("pocket", ("pockets", "front pockets", "two pockets"))
DRAWSTRING = Detail("drawstring", ("a drawstring", "a drawstring waist"))
DRESS_DETAILS = (
    BELT,
    Detail("buttons", ("buttons", "a buttoned bodice")),
    Detail("pocket", ("side pockets", "pockets")),
)

TAXONOMY = (
    Subcategory(
        "t-shirt",
        "tops",
        _draw_tshirt,
        ("t-shirt", "crew neck t-shirt"),
        ("cotton", "jersey"),
        (POCKET_CHEST, LOGO),
        sleeves=("short", "long"),
    ),
    Subcategory(
        "shirt",
        "tops",
        _draw_shirt,
        ("shirt", "collared shirt", "button-down shirt"),
        ("cotton", "linen", "silk"),
        (POCKET_CHEST, LOGO),
        sleeves=("short", "long"),
    ),
    Subcategory(
        "hoodie",
        "tops",
        _draw_hoodie,
        ("hoodie", "pullover hoodie"),
        ("cotton", "fleece"),
        (Detail("pocket", ("a kangaroo pocket", "a front pocket")), ZIP, LOGO),
        sleeves=("long",),
    ),
    Subcategory(
        "sweater",
        "tops",
        _draw_sweater,
        ("sweater", "knit sweater", "crew neck sweater"),
        ("wool", "cashmere", "cotton"),
        (LOGO, BUTTONS),
        sleeves=("long",),
    ),
    Subcategory(
        "tank top",
        "tops",
        _draw_tank_top,
        ("tank top", "sleeveless tank top"),
        ("cotton", "jersey"),
        (POCKET_CHEST, LOGO),
        sleeves=("sleeveless",),
    ),
    Subcategory(
        "mini dress",
        "dresses",
        _draw_mini_dress,
        ("mini dress", "short mini dress"),
        ("cotton", "silk", "linen", "chiffon"),
        DRESS_DETAILS,
        sleeves=("sleeveless", "short", "long"),
    ),
    Subcategory(
        "maxi dress",
        "dresses",
        _draw_maxi_dress,
        ("maxi dress", "long maxi dress", "flowing maxi dress"),
        ("cotton", "silk", "linen", "chiffon"),
        DRESS_DETAILS,
        sleeves=("sleeveless", "short", "long"),
    ),
    Subcategory(
        "mini skirt",
        "skirts",
        _draw_mini_skirt,
        ("mini skirt", "short mini skirt", "a-line mini skirt"),
        ("cotton", "denim", "leather", "corduroy"),
        (BELT, BUTTONS, POCKETS),
    ),
    Subcategory(
        "pleated skirt",
        "skirts",
        _draw_pleated_skirt,
        ("pleated skirt",),
        ("chiffon", "wool", "satin"),
        (BELT, BUTTONS),
        lengths=("knee-length", "midi"),
    ),
    Subcategory(
        "pencil skirt",
        "skirts",
        _draw_pencil_skirt,
        ("pencil skirt", "fitted pencil skirt"),
        ("wool", "cotton", "leather"),
        (BELT, BUTTONS, POCKETS),
    ),
    Subcategory(
        "jeans",
        "trousers",
        _draw_jeans,
        ("jeans", "straight jeans", "slim jeans"),
        ("denim",),
        (POCKETS, BELT, Detail("rips", ("ripped knees", "distressed rips"))),
        lengths=("full-length", "cropped"),
        plural=True,
    ),
    Subcategory(
        "shorts",
        "trousers",
        _draw_shorts,
        ("shorts", "casual shorts"),
        ("cotton", "denim", "linen"),
        (POCKETS, BELT, DRAWSTRING),
        plural=True,
    ),
    Subcategory(
        "joggers",
        "trousers",
        _draw_joggers,
        ("joggers", "slim joggers", "relaxed joggers"),
        ("cotton", "fleece", "jersey"),
        (POCKETS, DRAWSTRING, LOGO),
        plural=True,
    ),
    Subcategory(
        "jacket",
        "outerwear",
        _draw_jacket,
        ("jacket", "short jacket", "bomber jacket"),
        ("denim", "leather", "nylon", "suede"),
        (Detail("pocket", ("flap pockets", "two pockets", "pockets")), ZIP, BUTTONS, LOGO),
        sleeves=("long",),
        exclusive=(("zip", "buttons"),),
    ),
    Subcategory(
        "coat",
        "outerwear",
        _draw_coat,
        ("coat", "overcoat", "tailored coat"),
        ("wool", "cashmere", "tweed"),
        (
            Detail("buttons", ("double-breasted buttons", "two rows of buttons", "buttons")),
            BELT,
            Detail("pocket", ("flap pockets", "pockets")),
        ),
        sleeves=("long",),
        lengths=("knee-length", "long"),
    ),
    Subcategory(
        "tote",
        "bags",
        _draw_tote,
        ("tote", "tote bag", "shopper tote"),
        ("canvas", "leather", "cotton"),
        (Detail("pocket", ("a front pocket", "an outer pocket")), LOGO),
    ),
    Subcategory(
        "backpack",
        "bags",
        _draw_backpack,
        ("backpack", "everyday backpack"),
        ("nylon", "canvas", "leather"),
        (
            Detail("pocket", ("a front pocket", "a zipped pocket")),
            Detail("zip", ("a zip", "a zip opening", "a zip top")),
            LOGO,
        ),
    ),
    Subcategory(
        "clutch",
        "bags",
        _draw_clutch,
        ("clutch", "clutch bag", "evening clutch"),
        ("leather", "satin", "suede"),
        (Detail("chain", ("a chain strap", "a gold chain")), Detail("logo", ("a gold clasp logo", "a logo clasp"))),
    ),
    Subcategory(
        "sneakers",
        "shoes",
        _draw_sneakers,
        ("sneakers", "low-top sneakers", "lace-up sneakers"),
        ("canvas", "leather", "suede"),
        (Detail("logo", ("a side logo", "a logo stripe", "a logo")),),
        plural=True,
    ),
    Subcategory(
        "boots",
        "shoes",
        _draw_boots,
        ("boots", "ankle boots", "heeled boots"),
        ("leather", "suede"),
        (Detail("zip", ("a side zip", "a zip")), Detail("buckle", ("a buckle strap", "a buckle"))),
        plural=True,
    ),
    Subcategory(
        "sandals",
        "shoes",
        _draw_sandals,
        ("sandals", "strappy sandals", "flat sandals"),
        ("leather", "suede"),
        (Detail("buckle", ("an ankle buckle", "a buckle")), Detail("platform", ("a platform sole", "a platform"))),
        plural=True,
    ),
    Subcategory(
        "hat",
        "accessories",
        _draw_hat,
        ("hat", "fedora hat", "brimmed hat"),
        ("wool", "felt", "straw"),
        (Detail("band", ("a ribbon band", "a contrast band")), LOGO),
    ),
    Subcategory(
        "scarf",
        "accessories",
        _draw_scarf,
        ("scarf", "long scarf", "wrap scarf"),
        ("wool", "silk", "cashmere"),
        (Detail("fringe", ("fringed ends", "a fringe")), LOGO),
    ),
    Subcategory(
        "belt",
        "accessories",
        _draw_belt,
        ("belt", "waist belt", "slim belt"),
        ("leather", "suede"),
        (Detail("studs", ("metal studs", "studs", "a studded strap")),),
    ),
)

CATEGORIES = tuple(dict.fromkeys(s.category for s in TAXONOMY))
SUBCATEGORIES = tuple(s.name for s in TAXONOMY)
SUBCATEGORY_BY_NAME = {s.name: s for s in TAXONOMY}


def _check_taxonomy():
    names = [s.name for s in TAXONOMY]
    if len(set(names)) != len(names):
        raise ValueError("taxonomy: duplicate subcategory names")
    for s in TAXONOMY:
        for noun in s.nouns:
            if s.name not in noun:
                raise ValueError(f"taxonomy: noun {noun!r} of subcategory {s.name!r} does not contain its name")


_check_taxonomy()
