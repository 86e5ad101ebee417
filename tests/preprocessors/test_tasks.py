"""The five kaleido tasks: each label against its transformation."""

import itertools

import numpy as np
import pytest
from PIL import Image

from kaleido_tf.preprocessors.example_builder import extra_crops, pretrain_features, transformed_crops
from kaleido_tf.preprocessors.kaleido_patches import LEVEL_OFFSETS, NUM_PATCHES, KaleidoPatchGenerator
from kaleido_tf.preprocessors.kaleido_tasks import (
    JIGSAW_PERMUTATIONS,
    KaleidoTaskPlan,
    KaleidoTaskSampler,
    apply_jigsaw,
    grey_crop,
    rotate_crop,
    undo_jigsaw,
)
from kaleido_tf.preprocessors.pixel_extractor import PixelStatsPatchExtractor

ROT, JIG, CAM, GREY, BLANK = LEVEL_OFFSETS


def _base_crops(seed=0, size=16):
    """55 crops of a random-coloured picture (every cell different)."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (50, 50, 3), dtype=np.uint8))
    return KaleidoPatchGenerator(crop_size=size, foreground=None)(img).crops()


def test_permutation_table():
    assert len(JIGSAW_PERMUTATIONS) == 24 and len(set(JIGSAW_PERMUTATIONS)) == 24
    assert JIGSAW_PERMUTATIONS[0] == (0, 1, 2, 3) and JIGSAW_PERMUTATIONS[23] == (3, 2, 1, 0)
    assert list(JIGSAW_PERMUTATIONS) == sorted(itertools.permutations(range(4)))


@pytest.mark.parametrize("p", range(24))
def test_undoing_the_jigsaw_restores_the_order(p):
    items = ["a", "b", "c", "d"]
    shown = apply_jigsaw(items, p)
    assert shown == [items[i] for i in JIGSAW_PERMUTATIONS[p]]
    assert undo_jigsaw(shown, p) == items
    assert (shown == items) == (p == 0)


def test_rotation_back_restores_and_labels_are_quarter_turns():
    crop = _base_crops()[ROT]
    for k in range(4):
        turned = rotate_crop(crop, k)
        np.testing.assert_array_equal(np.rot90(turned, -k), crop)
        if k:
            assert not np.array_equal(turned, crop)
    # label 1 is a counter-clockwise quarter turn: the top-right pixel goes to the top-left
    np.testing.assert_array_equal(rotate_crop(crop, 1)[0, 0], crop[0, -1])


def test_grey_crop_is_grey_luma():
    crop = _base_crops()[GREY + 3]
    g = grey_crop(crop)
    assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()
    expected = np.round(crop[..., 0] * 0.299 + crop[..., 1] * 0.587 + crop[..., 2] * 0.114)
    np.testing.assert_allclose(g[..., 0], expected, atol=1)


def _plan(rotation=2, jigsaw=9, slot=4, grey=(1, 7), blank=(0, 5, 24)):
    return KaleidoTaskPlan(
        rotation=rotation,
        jigsaw=jigsaw,
        camouflage_slot=slot,
        camouflage_label=9 if slot is None else slot,
        grey_ids=grey,
        blank_ids=blank,
    )


def test_features_follow_the_transformed_crops():
    """Assembled features == features of the transformed crops; each block changes only as labelled."""
    base = _base_crops(1)
    donor = _base_crops(2)[CAM + 4]
    plan = _plan()
    ext = PixelStatsPatchExtractor(crop_size=16, feature_size=12, seed=3)
    base_f = ext(base)
    extra, where = extra_crops(base, plan, donor)
    assert len(extra) == 4  # rotated crop, donor crop, two greyed crops
    feats, grey_target = pretrain_features(base_f, plan, ext(np.stack(extra)), where)
    shown = transformed_crops(base, plan, donor)
    np.testing.assert_allclose(feats, ext(shown), rtol=1e-5, atol=1e-5)

    # rotation: turning the shown crop back gives the original
    np.testing.assert_array_equal(np.rot90(shown[ROT], -plan.rotation), base[ROT])
    # jigsaw: undoing the permutation restores the original order of crops and of features
    np.testing.assert_array_equal(np.stack(undo_jigsaw(list(shown[JIG : JIG + 4]), plan.jigsaw)), base[JIG : JIG + 4])
    np.testing.assert_allclose(
        np.stack(undo_jigsaw(list(feats[JIG : JIG + 4]), plan.jigsaw)), base_f[JIG : JIG + 4], rtol=1e-6
    )
    # camouflage: only the labelled slot differs, and it holds the donor crop
    differs = [not np.array_equal(shown[CAM + i], base[CAM + i]) for i in range(9)]
    assert differs == [i == plan.camouflage_label for i in range(9)]
    np.testing.assert_array_equal(shown[CAM + plan.camouflage_label], donor)
    feat_differs = [not np.allclose(feats[CAM + i], base_f[CAM + i]) for i in range(9)]
    assert feat_differs == differs
    # grey: the labelled crops are grey, the others untouched; the target is the colour feature
    for i in range(16):
        is_grey = (shown[GREY + i][..., 0] == shown[GREY + i][..., 2]).all()
        assert is_grey == (i in plan.grey_ids)
    np.testing.assert_allclose(grey_target, base_f[[GREY + g for g in plan.grey_ids]], rtol=1e-6)
    assert not np.allclose(grey_target, feats[[GREY + g for g in plan.grey_ids]])
    # blank: the features are kept (the model zeroes them)
    np.testing.assert_allclose(feats[BLANK:], base_f[BLANK:], rtol=1e-6)


def test_no_rotation_and_no_camouflage_need_no_extra_crops():
    base = _base_crops()
    plan = _plan(rotation=0, slot=None)
    extra, where = extra_crops(base, plan, None)
    assert len(extra) == 2 and "rotation" not in where and "donor" not in where
    ext = PixelStatsPatchExtractor(crop_size=16, feature_size=6)
    feats, _ = pretrain_features(ext(base), plan, ext(np.stack(extra)), where)
    np.testing.assert_allclose(feats[CAM : CAM + 9], ext(base)[CAM : CAM + 9], rtol=1e-6)
    with pytest.raises(ValueError, match="donor"):
        extra_crops(base, _plan(slot=3), None)


def test_sampler_labels_cover_their_ranges():
    sampler = KaleidoTaskSampler()
    rng = np.random.default_rng(0)
    plans = [sampler.sample(rng) for _ in range(3000)]
    assert {p.rotation for p in plans} == set(range(4))
    assert {p.jigsaw for p in plans} == set(range(24))
    assert {p.camouflage_label for p in plans} == set(range(9))
    assert all(p.camouflage_slot == p.camouflage_label for p in plans)
    assert all(len(set(p.grey_ids)) == 2 and list(p.grey_ids) == sorted(p.grey_ids) for p in plans)
    assert all(len(set(p.blank_ids)) == 3 and max(p.blank_ids) < 25 for p in plans)
    counts = np.bincount([p.rotation for p in plans], minlength=4) / len(plans)
    assert np.abs(counts - 0.25).max() < 0.04
    assert sampler.camouflage_label_num == 9


def test_sampler_none_class_forced_and_protected():
    sampler = KaleidoTaskSampler(camouflage_none_class=True)
    assert sampler.camouflage_label_num == 10
    rng = np.random.default_rng(1)
    plans = [sampler.sample(rng) for _ in range(2000)]
    none = [p for p in plans if p.camouflage_label == 9]
    assert all(p.camouflage_slot is None for p in none) and 0.06 < len(none) / len(plans) < 0.14
    forced = sampler.sample(rng, forced={3: [6], 4: [11], 5: [2, 20, 7, 9]}, protected={4: {0, 1, 2}, 5: set()})
    assert forced.camouflage_slot == 6 and 11 in forced.grey_ids and set(forced.blank_ids) == {2, 7, 20}
    for _ in range(200):
        p = sampler.sample(rng, protected={3: set(range(8)), 4: set(range(14)), 5: set(range(22))})
        assert p.camouflage_slot in (8, None)
        assert set(p.grey_ids) == {14, 15} and set(p.blank_ids) == {22, 23, 24}


def test_patch_count_constant():
    assert NUM_PATCHES == 55
