"""Bad images are converted or rejected, each with its reason."""

import numpy as np
import pytest
from PIL import Image, ImageOps

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


def _save_16bit(path, values):
    Image.fromarray(np.asarray(values, np.uint16)).save(path)  # a 16-bit greyscale PNG
    return str(path)


def test_16_bit_pngs_are_scaled_by_the_bit_depth_not_the_image_maximum(tmp_path, loader):
    uniform = _save_16bit(tmp_path / "uniform.png", np.full((40, 40), 32768))
    ramp = _save_16bit(tmp_path / "ramp.png", np.tile(np.linspace(0, 200, 40).round(), (40, 1)))
    full = _save_16bit(tmp_path / "full.png", np.tile(np.linspace(0, 65535, 40).round(), (40, 1)))
    assert Image.open(uniform).mode.startswith("I")
    got = loader.load(uniform)
    assert got.conversions == ("high-bit-depth->rgb",)
    assert np.unique(np.asarray(got.image)).tolist() == [128]  # 32768 * 255 / 65535 = 127.5, not 255
    dark = np.asarray(loader.load(ramp).image, np.float64)
    assert dark.max() == 1 and dark.mean() < 0.5  # 0-200 of 65535 stays nearly black (was stretched to 0-255)
    wide = np.asarray(loader.load(full).image)[0, :, 0]
    assert wide[0] == 0 and wide[-1] == 255 and np.all(np.diff(wide.astype(int)) >= 0)


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_every_exif_orientation_is_applied_and_counted(tmp_path, loader, orientation):
    img = Image.new("RGB", (60, 40), (255, 255, 255))
    img.paste((200, 0, 0), (0, 0, 10, 10))  # a mark in the top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = str(tmp_path / f"o{orientation}.jpg")
    img.save(path, exif=exif, quality=95)
    got = loader.load(path)
    assert got.conversions == ("exif-rotated",)
    assert got.size == ((40, 60) if orientation >= 5 else (60, 40))
    assert got.original_size == (60, 40)
    expected = ImageOps.exif_transpose(Image.open(path))
    assert np.array_equal(np.asarray(got.image), np.asarray(expected))
    assert loader.load(_plain_jpeg(tmp_path)).conversions == ()


def _plain_jpeg(tmp_path):
    path = str(tmp_path / "plain.jpg")
    exif = Image.Exif()
    exif[0x0112] = 1
    Image.new("RGB", (60, 40), (255, 255, 255)).save(path, exif=exif)
    return path
