"""Foreground box, kaleido grid geometry and positions."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from kaleido_tf.preprocessors.foreground import ForegroundDetector
from kaleido_tf.preprocessors.kaleido_patches import (
    LEVEL_OFFSETS,
    LEVEL_SIZES,
    NUM_PATCHES,
    KaleidoPatchGenerator,
    grid_boxes,
    level_slots,
)


def _picture(size=(120, 90), box=(30, 20, 80, 70), colour=(200, 20, 20), background=(250, 250, 250)):
    img = Image.new("RGB", size, background)
    ImageDraw.Draw(img).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=colour)
    return img


def test_saliency_box_finds_the_object():
    det = ForegroundDetector("saliency", margin=0.0)
    result = det(_picture())
    assert result.fallback is None and result.box == (30, 20, 80, 70)
    # with a margin the box grows by 2% of the image on each side
    result = ForegroundDetector("saliency", margin=0.02)(_picture())
    assert result.box == (27, 18, 83, 72)
    # a large picture is analysed on a reduced copy: the box is still close
    big = _picture(size=(1200, 900), box=(300, 200, 800, 700))
    x0, y0, x1, y1 = ForegroundDetector("saliency", margin=0.0)(big).box
    assert abs(x0 - 300) <= 5 and abs(y0 - 200) <= 5 and abs(x1 - 800) <= 5 and abs(y1 - 700) <= 5


def test_saliency_fallbacks_to_full_image():
    det = ForegroundDetector("saliency")
    assert det(Image.new("RGB", (60, 40), "white")).fallback == "no foreground found"
    tiny = _picture(size=(100, 100), box=(50, 50, 54, 54))
    assert det(tiny).box == (0, 0, 100, 100) and det(tiny).fallback == "foreground too small"
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 50, 3), dtype=np.uint8))
    assert det(noise).fallback == "background not uniform" and det(noise).box == (0, 0, 50, 50)
    assert ForegroundDetector("none")(_picture()).box == (0, 0, 120, 90)
    with pytest.raises(ValueError, match="foreground method"):
        ForegroundDetector("sod")


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_grid_cells_tile_the_box(n):
    box = (7, 3, 50, 41)  # 43 x 38, not divisible by n
    cells = grid_boxes(box, n)
    assert len(cells) == n * n
    cover = np.zeros((60, 60), int)
    for x0, y0, x1, y1 in cells:
        assert x1 > x0 and y1 > y0
        cover[y0:y1, x0:x1] += 1
    assert cover[3:41, 7:50].min() == 1 and cover.sum() == 43 * 38  # no gap, no overlap
    # row-major order: cell index r * n + c
    for r in range(n):
        for c in range(n):
            x0, y0, _, _ = cells[r * n + c]
            assert x0 == 7 + round(c * 43 / n) and y0 == 3 + round(r * 38 / n)


def test_patch_positions_per_level():
    gen = KaleidoPatchGenerator(crop_size=20, foreground=ForegroundDetector("saliency", margin=0.0))
    patches = gen(_picture(size=(120, 90), box=(20, 10, 80, 70)))  # a 60 x 60 box
    assert patches.box == (20, 10, 80, 70)
    assert patches.positions.shape == (NUM_PATCHES, 5) and patches.boxes.shape == (NUM_PATCHES, 4)
    assert LEVEL_OFFSETS == (0, 1, 5, 14, 30) and LEVEL_SIZES == (1, 4, 9, 16, 25)
    np.testing.assert_allclose(patches.positions[0], [0, 1, 0, 1, 1])
    for level, n in enumerate((1, 2, 3, 4, 5), start=1):
        for i, slot in enumerate(level_slots(level)):
            r, c = divmod(i, n)
            # 60 is divisible by 1..5, so the positions are exact fractions
            np.testing.assert_allclose(
                patches.positions[slot], [c / n, (c + 1) / n, r / n, (r + 1) / n, 1 / n**2], atol=1e-6
            )
            x0, y0, x1, y1 = patches.boxes[slot]
            assert (x0, y0, x1, y1) == (
                20 + 60 * c // n,
                10 + 60 * r // n,
                20 + 60 * (c + 1) // n,
                10 + 60 * (r + 1) // n,
            )


def test_positions_follow_the_pixel_boxes_for_uneven_boxes():
    gen = KaleidoPatchGenerator(crop_size=16, foreground=None)
    patches = gen(Image.new("RGB", (37, 23), "red"))
    for slot in range(NUM_PATCHES):
        x0, y0, x1, y1 = patches.boxes[slot]
        expected = [x0 / 37, x1 / 37, y0 / 23, y1 / 23, (x1 - x0) * (y1 - y0) / (37 * 23)]
        np.testing.assert_allclose(patches.positions[slot], expected, rtol=1e-6)
    # areas of a level sum to 1
    for level in range(1, 6):
        assert abs(patches.positions[list(level_slots(level)), 4].sum() - 1.0) < 1e-6


def test_crops_show_their_cell():
    img = Image.new("RGB", (40, 40), (0, 0, 255))
    ImageDraw.Draw(img).rectangle((20, 0, 39, 19), fill=(255, 0, 0))  # top-right quarter red
    patches = KaleidoPatchGenerator(crop_size=12, foreground=None)(img)
    crops = patches.crops()
    assert crops.shape == (NUM_PATCHES, 12, 12, 3) and crops.dtype == np.uint8
    top_right = crops[LEVEL_OFFSETS[1] + 1]
    assert (top_right[..., 0] == 255).all() and (top_right[..., 2] == 0).all()
    bottom_left = crops[LEVEL_OFFSETS[1] + 2]
    assert (bottom_left[..., 2] == 255).all() and (bottom_left[..., 0] == 0).all()


@settings(max_examples=60, deadline=None)
@given(x0=st.integers(0, 50), y0=st.integers(0, 50), w=st.integers(5, 400), h=st.integers(5, 400))
def test_any_box_is_tiled_and_positions_span_unit_square(x0, y0, w, h):
    from kaleido_tf.preprocessors.kaleido_patches import normalised_position

    box = (x0, y0, x0 + w, y0 + h)
    for n in (1, 2, 3, 4, 5):
        cells = grid_boxes(box, n)
        assert sum((c[2] - c[0]) * (c[3] - c[1]) for c in cells) == w * h
        assert all(c[2] > c[0] and c[3] > c[1] for c in cells)
        positions = np.array([normalised_position(box, c) for c in cells])
        assert positions[:, [0, 2]].min() == 0 and positions[:, [1, 3]].max() == 1
        assert abs(positions[:, 4].sum() - 1) < 1e-9
