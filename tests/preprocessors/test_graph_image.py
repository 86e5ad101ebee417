"""The TF-ops image path against the offline PIL path: decoding, boxes, crops, features, bad inputs."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kaleido_tf.preprocessors.foreground import ForegroundDetector
from kaleido_tf.preprocessors.graph_extractor import GraphImagePath
from kaleido_tf.preprocessors.graph_image import GraphImageDecoder
from kaleido_tf.preprocessors.graph_patches import GraphForeground, kaleido_boxes, pil_bilinear_resize
from kaleido_tf.preprocessors.image_loader import ImageLoader
from kaleido_tf.preprocessors.kaleido_patches import KaleidoPatchGenerator
from kaleido_tf.preprocessors.pixel_extractor import PixelStatsPatchExtractor


def _encode(image, fmt, **kwargs):
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _offline(data, tmp_path, name="x"):
    path = tmp_path / name
    path.write_bytes(data)
    return np.asarray(ImageLoader().load(path).image)


def _product(rng, h=90, w=70):
    """A product shot: noisy light background, a dark textured object."""
    a = np.full((h, w, 3), 235, np.int32)
    a[h // 5 : h * 4 // 5, w // 4 : w * 3 // 5] = rng.integers(0, 140, (h * 4 // 5 - h // 5, w * 3 // 5 - w // 4, 3))
    return np.clip(a + rng.integers(-4, 5, a.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def decoder():
    return GraphImageDecoder()


@pytest.mark.parametrize("mode", ["RGB", "L", "1", "P16", "P256", "Ptrns", "RGBA", "LA", "I;16"])
def test_png_modes_decode_as_the_loader(decoder, mode, tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    if mode == "RGBA":
        image = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    elif mode == "LA":
        image = Image.fromarray(np.dstack([rgb[..., 0], alpha]), "LA")
    elif mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65536, (40, 50), dtype=np.uint16))
    elif mode.startswith("P"):
        image = Image.fromarray(rgb).quantize(16 if mode == "P16" else 256)
    else:
        image = Image.fromarray(rgb).convert(mode)
    kwargs = {"transparency": 3} if mode == "Ptrns" else {}
    data = _encode(image, "PNG", **kwargs)
    got = decoder.decode(tf.constant(data)).numpy()
    expected = _offline(data, tmp_path, "x.png")
    if mode == "I;16":  # the bit-depth rule of both paths: round(v * 255 / 65535)
        v = np.asarray(Image.open(io.BytesIO(data))).astype(np.float64)
        np.testing.assert_array_equal(expected[..., 0], np.round(v * 255 / 65535).astype(np.uint8))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("quality", [70, 95])
def test_jpeg_decode_and_exif_orientation_equal_the_loader(decoder, orientation, quality, tmp_path):
    rng = np.random.default_rng(orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(Image.fromarray(_product(rng, 48, 64)), "JPEG", quality=quality, exif=exif.tobytes())
    np.testing.assert_array_equal(decoder.decode(tf.constant(data)).numpy(), _offline(data, tmp_path, "x.jpg"))


def test_greyscale_jpeg(decoder, tmp_path):
    data = _encode(Image.fromarray(_product(np.random.default_rng(3))).convert("L"), "JPEG")
    np.testing.assert_array_equal(decoder.decode(tf.constant(data)).numpy(), _offline(data, tmp_path, "x.jpg"))


def test_resize_matches_pil_bilinear():
    """One-axis resizes are exact; two-axis within 1 grey level on a small share of pixels (see docs)."""
    rng = np.random.default_rng(0)
    worst, share = 0, []
    for h, w, oh, ow in [(50, 70, 50, 224), (300, 70, 224, 70), (300, 400, 224, 224), (61, 47, 224, 224)]:
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ref = np.asarray(Image.fromarray(a).resize((ow, oh), Image.BILINEAR)).astype(int)
        got = pil_bilinear_resize(tf.constant(a), oh, ow).numpy().astype(int)
        if oh == h or ow == w:
            np.testing.assert_array_equal(got, ref)
        worst = max(worst, np.abs(got - ref).max())
        share.append(np.mean(got != ref))
    assert worst <= 1 and max(share) < 0.05


def test_foreground_and_kaleido_boxes_identical():
    rng = np.random.default_rng(5)
    detector = ForegroundDetector()
    graph = GraphForeground.from_detector(detector)
    generator = KaleidoPatchGenerator(crop_size=16, foreground=detector)
    plain = np.full((64, 64, 3), 200, np.uint8)
    noisy = rng.integers(0, 256, (80, 60, 3), dtype=np.uint8)
    for a in [_product(rng), _product(rng, 120, 200), _product(rng, 33, 257), plain, noisy]:
        offline = detector(Image.fromarray(a))
        box, fallback = graph(tf.constant(a))
        assert tuple(box.numpy()) == offline.box
        assert (fallback.numpy() == 0) == (offline.fallback is None)
        patches = generator(Image.fromarray(a))
        cells, positions, _ = kaleido_boxes(box, a.shape[1], a.shape[0])
        np.testing.assert_array_equal(cells.numpy(), patches.boxes)
        np.testing.assert_array_equal(positions.numpy(), patches.positions)


def test_whole_path_matches_offline_pixel_features(tmp_path):
    rng = np.random.default_rng(7)
    extractor = PixelStatsPatchExtractor(crop_size=16, feature_size=32)
    detector = ForegroundDetector()
    path = GraphImagePath(extractor, foreground=detector)
    images = [_product(rng, 90, 70), _product(rng, 64, 128)]
    blobs = [_encode(Image.fromarray(images[0]), "PNG"), _encode(Image.fromarray(images[1]), "JPEG", quality=90)]
    out = path(tf.constant(blobs))
    generator = KaleidoPatchGenerator(crop_size=16, foreground=detector)
    for i, data in enumerate(blobs):
        patches = generator(Image.fromarray(_offline(data, tmp_path, f"{i}.img")))
        assert tuple(out["box"][i].numpy()) == patches.box
        np.testing.assert_array_equal(out["positions"][i].numpy(), patches.positions)
        expected = extractor(patches.crops())
        # Float32 sums in another order: 1e-5 relative to the feature scale.
        np.testing.assert_allclose(out["features"][i].numpy(), expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def _error(decoder, data):
    with pytest.raises(tf.errors.InvalidArgumentError) as err:
        decoder.decode(tf.constant(data)).numpy()
    return str(err.value)


def test_bad_inputs_refused_with_a_message(decoder):
    rng = np.random.default_rng(9)
    jpeg = _encode(Image.fromarray(_product(rng)), "JPEG")
    assert "image_bytes: 0 bytes" in _error(decoder, b"")
    assert "not a JPEG or PNG" in _error(decoder, b"hello, this is text and not a picture")
    assert "truncated" in _error(decoder, jpeg[: len(jpeg) // 2])
    assert "too small" in _error(decoder, _encode(Image.fromarray(_product(rng, 20, 40)), "PNG"))
    assert "too small" in _error(GraphImageDecoder(min_size=5), _encode(Image.new("RGB", (4, 40)), "PNG"))


def test_decompression_bomb_refused_before_decoding():
    # A valid PNG header claiming 60000 x 60000 pixels followed by no real pixel data: refused on the header.
    small = _encode(Image.new("RGB", (64, 64)), "PNG")
    bomb = small[:16] + (60000).to_bytes(4, "big") * 2 + small[24:]
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than max_pixels"):
        GraphImageDecoder().decode(tf.constant(bomb)).numpy()
    big_jpeg = _encode(Image.new("RGB", (400, 300)), "JPEG")
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than max_pixels=100000"):
        GraphImageDecoder(max_pixels=100_000).decode(tf.constant(big_jpeg)).numpy()


def test_saved_model_of_the_path_answers_from_bytes_alone(tmp_path):
    """The path survives tf.saved_model.save / load: no Python objects are needed to serve it."""
    rng = np.random.default_rng(11)
    extractor = PixelStatsPatchExtractor(crop_size=16, feature_size=8)
    path = GraphImagePath(extractor, foreground=ForegroundDetector())
    blobs = tf.constant([_encode(Image.fromarray(_product(rng)), "PNG")])
    expected = path(blobs)
    tf.saved_model.save(path, str(tmp_path / "sm"), signatures={"embed_patches": path.run})
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    got = loaded.signatures["embed_patches"](image_bytes=blobs)
    np.testing.assert_array_equal(got["features"].numpy(), expected["features"].numpy())
    np.testing.assert_array_equal(got["box"].numpy(), expected["box"].numpy())
    with pytest.raises(tf.errors.InvalidArgumentError, match="image_bytes: 0 bytes"):
        loaded.signatures["embed_patches"](image_bytes=tf.constant([b""]))
