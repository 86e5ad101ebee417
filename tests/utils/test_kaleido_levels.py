"""The kaleido level owner against what the schema presets, the config and the golden fixtures use."""

import json
import os

import numpy as np
import pytest

from kaleido_tf.datasets.schema import KNOWN_FIELD_LENGTHS, get_schema
from kaleido_tf.model_zoo.kaleidobert_config import KaleidoBERTConfig
from kaleido_tf.utils import kaleido_levels as kl

GOLDEN = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "golden", "tiny")


def test_level_geometry():
    assert kl.LEVEL_GRIDS == (1, 2, 3, 4, 5)
    assert kl.LEVEL_SIZES == (1, 4, 9, 16, 25)
    assert kl.LEVEL_OFFSETS == (0, 1, 5, 14, 30)
    assert kl.NUM_PATCHES == 55 == 1 + 4 + 9 + 16 + 25
    assert kl.POSITION_SIZE == 5
    assert [list(kl.level_slots(level)) for level in (1, 2)] == [[0], [1, 2, 3, 4]]
    assert kl.level_slots(5) == range(30, 55)
    with pytest.raises(ValueError, match="kaleido level must be 1..5, got 6"):
        kl.level_slots(6)


def test_key_names():
    assert kl.LEVEL_NAMES == ("rotation", "jigsaw", "camouflage", "greymask", "blankmask")
    assert kl.LEVEL_SUFFIXES == ("rotation", "jigsaw", "camouflage", "grey_mask", "blank_mask")
    assert kl.feature_key("greymask") == "img_feature_convert_grey_mask"
    assert kl.position_key("blankmask") == "img_loc_position_blank_mask"
    assert kl.segment_key("greymask") == "img_feature_greymask_segment"
    assert kl.seq_len_key("blankmask") == "img_blankmask_seq_len"
    assert kl.FEATURE_KEYS[2] == "img_feature_convert_camouflage" and kl.POSITION_KEYS[0] == "img_loc_position_rotation"
    assert kl.POSITION_PREFIX == "img_loc_position_"
    with pytest.raises(ValueError, match="unknown kaleido level 'grey_mask'"):
        kl.feature_key("grey_mask")  # a schema suffix is not a level name


@pytest.mark.parametrize("preset", ["pretrain", "finetune", "retrieval"])
def test_schema_presets_use_the_levels(preset):
    schema = get_schema(preset)
    for feature, position, patches in zip(kl.FEATURE_KEYS, kl.POSITION_KEYS, kl.LEVEL_SIZES):
        assert schema[feature].length == patches * 2048
        assert schema[position].length == patches * kl.POSITION_SIZE
    assert schema["image_mask"].length == kl.NUM_PATCHES
    image = [name for name in schema.names if name.startswith(("img_feature_convert_", "img_loc_position_"))]
    assert image == list(kl.FEATURE_KEYS) + list(kl.POSITION_KEYS)  # level order, features first
    assert KNOWN_FIELD_LENGTHS["img_loc_position_camouflage"] == 45


def test_config_levels():
    config = KaleidoBERTConfig()
    assert config.level_lengths() == [
        (name, suffix, n) for name, suffix, n in zip(kl.LEVEL_NAMES, kl.LEVEL_SUFFIXES, kl.LEVEL_SIZES)
    ]
    assert config.num_patches == kl.NUM_PATCHES


def test_golden_fixtures_use_the_levels():
    with open(os.path.join(GOLDEN, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    assert [config[kl.seq_len_key(name)] for name in kl.LEVEL_NAMES] == list(kl.LEVEL_SIZES)
    golden = np.load(os.path.join(GOLDEN, "golden.npz"))
    feature_size = config["patch_feature_size"]
    for feature, position, patches in zip(kl.FEATURE_KEYS, kl.POSITION_KEYS, kl.LEVEL_SIZES):
        assert golden[f"input/{feature}"].shape[1] == patches * feature_size
        assert golden[f"input/{position}"].shape[1] == patches * kl.POSITION_SIZE
    assert golden["input/image_mask"].shape[1] == kl.NUM_PATCHES
    with open(os.path.join(GOLDEN, "variables.txt"), encoding="utf-8") as f:
        variables = f.read()
    for name in kl.LEVEL_NAMES:  # the TF1 checkpoint names its projections after the level names
        assert f"{name}_projector" in variables
