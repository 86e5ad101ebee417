"""Bad images are converted or rejected, each with its reason."""

import numpy as np
import pytest
from PIL import Image

from kaleido_tf.preprocessors.image_loader import ImageLoader, ImageRejected


@pytest.fixture()
def loader():
    return ImageLoader(min_size=16, max_size=128)


def _save(path, img, **kw):
    img.save(path, **kw)
    return str(path)


def test_rgb_passes_untouched(tmp_path, loader):
    path = _save(tmp_path / "a.png", Image.new("RGB", (40, 30), (10, 20, 30)))
    loaded = loader.load(path)
    assert loaded.conversions == () and loaded.size == (40, 30) and loaded.image.mode == "RGB"
    assert np.asarray(loaded.image)[0, 0].tolist() == [10, 20, 30]


@pytest.mark.parametrize(
    "mode, ext, conversion",
    [
        ("L", "png", "greyscale->rgb"),
        ("1", "png", "greyscale->rgb"),
        ("CMYK", "jpg", "cmyk->rgb"),
        ("RGBA", "png", "alpha->rgb"),
        ("LA", "png", "alpha->rgb"),
        ("P", "png", "palette->rgb"),
        ("I;16", "png", "high-bit-depth->rgb"),
    ],
)
def test_modes_are_converted_to_rgb(tmp_path, loader, mode, ext, conversion):
    img = Image.new("RGB", (32, 24), (200, 100, 50)).convert(mode)
    if mode == "I;16":
        img = Image.fromarray(np.full((24, 32), 40000, np.uint16))
    path = _save(tmp_path / f"a.{ext}", img)
    loaded = loader.load(path)
    assert loaded.image.mode == "RGB" and loaded.size == (32, 24)
    assert conversion in loaded.conversions


def test_transparent_pixels_go_white(tmp_path, loader):
    img = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    img.putpixel((0, 0), (255, 0, 0, 255))
    arr = np.asarray(loader.load(_save(tmp_path / "t.png", img)).image)
    assert arr[5, 5].tolist() == [255, 255, 255] and arr[0, 0].tolist() == [255, 0, 0]


def test_huge_images_are_downscaled(tmp_path, loader):
    for name in ("h.png", "h.jpg"):
        loaded = loader.load(_save(tmp_path / name, Image.new("RGB", (1000, 400), "red")))
        assert max(loaded.size) <= 128 and "downscaled" in loaded.conversions
        assert loaded.original_size == (1000, 400)
        w, h = loaded.size
        assert abs(w / h - 2.5) < 0.1


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: None, "missing file"),
        (lambda p: p.write_bytes(b"this is not an image"), "corrupt or unreadable image"),
        (lambda p: p.write_bytes(b""), "corrupt or unreadable image"),
        (lambda p: Image.new("RGB", (10, 40)).save(p, format="PNG"), "too small: 10x40"),
    ],
)
def test_rejections_give_reasons(tmp_path, loader, make, reason):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(ImageRejected) as info:
        loader.load(str(path))
    assert info.value.reason.startswith(reason) and str(path) in str(info.value)


def test_truncated_jpeg_is_rejected(tmp_path, loader):
    path = tmp_path / "t.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageRejected, match="corrupt or unreadable"):
        loader.load(str(path))


def test_too_many_pixels_is_rejected_before_decoding(tmp_path):
    path = _save(tmp_path / "big.png", Image.new("RGB", (300, 300)))
    with pytest.raises(ImageRejected, match="too large to decode: 300x300"):
        ImageLoader(min_size=8, max_size=64, max_pixels=50_000).load(path)
