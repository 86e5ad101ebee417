"""The benchmark helpers: FLOP counts, valid inputs, interleaved timing and paired ratios."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bench"))

import common


def test_encoder_params_and_flops_of_the_base_model():
    assert common.encoder_params(768, 3072, 12) == 85_054_464  # BERT-base's encoder stack
    config = common.make_config("base")
    train, forward = common.pretrain_flops(config), common.pretrain_flops(config, training=False)
    s = 64 + 55
    assert train.encoder == 6 * 85_054_464 * s and train.attention == 12 * 12 * s * s * 768
    np.testing.assert_allclose(train.total, 3 * forward.total)
    peer = common.peer_flops(config, s)
    assert peer.encoder == train.encoder and peer.total < train.total  # no patch projections, one head
    itm = common.itm_flops(config)
    assert itm.encoder == forward.encoder and itm.heads < forward.heads


def test_pretrain_features_are_valid_model_inputs():
    config = common.make_config("small")
    feats = common.pretrain_features(config, 4, seed=3)
    assert feats["input_ids"].max() < config.vocab_size and feats["masked_lm_positions"].max() < config.text_seq_len
    assert feats["img_feature_convert_blank_mask"].shape == (4, 25 * config.patch_feature_size)
    for row in feats["img_blank_lm_ids"]:
        assert len(set(row.tolist())) == len(row)  # distinct masked patches
    again = common.pretrain_features(config, 4, seed=3)
    assert all(np.array_equal(feats[k], again[k]) for k in feats)


def test_interleaved_rotates_the_order_and_pairs_rounds():
    calls = []
    times = common.interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=3, steps=2, progress=False
    )
    assert calls == ["a", "a", "b", "b", "b", "b", "a", "a", "a", "a", "b", "b"]
    assert all(len(v) == 3 for v in times.values())
    times = {"ours": [1.0, 2.0, 4.0], "peer": [2.0, 4.0, 2.0]}
    assert common.paired_ratio(times, "ours", "peer") == 2.0  # per round: 2, 2, 0.5 -> median 2
