"""Patch feature extractors behind one interface."""

import numpy as np
import pytest

from kaleido_tf.preprocessors.feature_extractor import build_feature_extractor
from kaleido_tf.preprocessors.kaleido_tasks import grey_crop, rotate_crop
from kaleido_tf.preprocessors.pixel_extractor import PixelStatsPatchExtractor
from kaleido_tf.preprocessors.resnet_extractor import ResNet50PatchExtractor


def _crops(n=5, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_pixel_extractor_is_seeded_and_sensitive():
    crops = _crops()
    ext = build_feature_extractor("pixels", crop_size=16, feature_size=24, seed=1)
    f = ext(crops)
    assert f.shape == (5, 24) and f.dtype == np.float32
    np.testing.assert_array_equal(f, build_feature_extractor("pixels", crop_size=16, feature_size=24, seed=1)(crops))
    assert not np.allclose(f, build_feature_extractor("pixels", crop_size=16, feature_size=24, seed=2)(crops))
    # each crop is processed on its own: batch composition does not matter
    np.testing.assert_allclose(ext(crops[2:3]), f[2:3], rtol=1e-5, atol=1e-6)
    # grey and rotated crops give other features
    assert not np.allclose(ext(grey_crop(crops[0])[None]), f[:1])
    assert not np.allclose(ext(rotate_crop(crops[0], 1)[None]), f[:1])


def test_pixel_raw_statistics():
    ext = PixelStatsPatchExtractor(crop_size=16, feature_size=4, grid=2, bins=2)
    crop = np.zeros((1, 16, 16, 3), np.uint8)
    crop[:, :, 8:] = 255  # right half white
    raw = ext.raw_features(crop)[0]
    np.testing.assert_allclose(raw[:3], 0.5)  # mean
    np.testing.assert_allclose(raw[3:6], 0.5)  # std
    hist = raw[6:14]
    assert hist[0] == pytest.approx(0.5) and hist[7] == pytest.approx(0.5)  # black and white bins
    small = raw[14:].reshape(2, 2, 3)
    np.testing.assert_allclose(small[:, 0], -0.5) and np.testing.assert_allclose(small[:, 1], 0.5)


def test_extractor_input_checks():
    ext = build_feature_extractor("pixels", crop_size=16, feature_size=4)
    with pytest.raises(ValueError, match=r"crops of shape \[N, 16, 16, 3\]"):
        ext(_crops(size=8))
    with pytest.raises(ValueError, match="uint8"):
        ext(_crops().astype(np.float32))
    assert ext(np.zeros((0, 16, 16, 3), np.uint8)).shape == (0, 4)
    with pytest.raises(ValueError, match="feature extractor must be one of"):
        build_feature_extractor("vit")
    with pytest.raises(ValueError, match="resnet_weights"):
        build_feature_extractor("pixels", resnet_weights="w.h5")


def test_resnet50_seeded_weights_file_and_projection(tmp_path):
    crops = _crops(n=3, size=32)
    a = build_feature_extractor("resnet50", crop_size=32, feature_size=2048, seed=4, batch_size=2)
    fa = a(crops)
    assert fa.shape == (3, 2048) and np.isfinite(fa).all() and (fa >= 0).all()  # pooled ReLU outputs
    # the same features batch by batch (tf.data batches of 2)
    np.testing.assert_allclose(a(crops[:1]), fa[:1], rtol=1e-4, atol=1e-4)
    # weights from a file replace the seeded initialisation
    path = str(tmp_path / "resnet.weights.h5")
    a.model.save_weights(path)
    b = ResNet50PatchExtractor(crop_size=32, feature_size=16, seed=9, weights_path=path, use_tf_function=False)
    fb = b(crops)
    assert fb.shape == (3, 16)
    np.testing.assert_allclose(fb, fa @ b.projection, rtol=1e-3, atol=1e-3)
    assert b.describe()["weights"] == "resnet.weights.h5"
    with pytest.raises(FileNotFoundError, match="--resnet_weights"):
        build_feature_extractor("resnet50", crop_size=32, resnet_weights=str(tmp_path / "none.h5"))
