"""The captioning attention mask: patches never see caption tokens, no caption token sees a later one."""

import numpy as np
import pytest
import tensorflow as tf

from kaleido_tf.layers.mask import seq2seq_attention_mask
from kaleido_tf.model_zoo import KaleidoBERTCaptioner, registry
from tests.caption.caption_data import SPECIAL_IDS, TINY_CHECKPOINT, caption_ids, random_patches

T, N = 6, 4


def test_mask_properties():
    input_mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    mask = np.asarray(seq2seq_attention_mask(input_mask, N))
    assert mask.shape == (2, T + N, T + N) and mask.dtype == np.int32
    for b in range(2):
        text_rows, patch_rows = mask[b, :T], mask[b, T:]
        # Patches attend to every patch and to no text.
        assert patch_rows[:, T:].min() == 1 and patch_rows[:, :T].max() == 0
        # Text attends to every patch.
        assert text_rows[:, T:].min() == 1
        for i in range(T):
            for j in range(T):
                expected = int(j <= i and input_mask[b, j] == 1)
                assert text_rows[i, j] == expected, (b, i, j)


def _model():
    config = registry.config_for(TINY_CHECKPOINT)
    model = KaleidoBERTCaptioner(config, **SPECIAL_IDS)
    model.build()
    registry.load_weights(model, TINY_CHECKPOINT)
    return model


@pytest.fixture(scope="module")
def model():
    return _model()


def _features(text):
    ids, mask = caption_ids(text)
    feats = random_patches(1, seed=3)
    feats.update(input_ids=ids[None], input_mask=mask[None], segment_ids=np.zeros_like(ids)[None])
    return feats


def test_no_caption_token_sees_a_later_one(model):
    a = _features("a red dress")
    b = _features("a red skirt , long")  # same first 3 tokens, then different
    out_a = model(a)["sequence_output"].numpy()
    out_b = model(b)["sequence_output"].numpy()
    # Positions [CLS] a red (0..2) see only themselves and the patches: identical.
    np.testing.assert_allclose(out_a[:, :3], out_b[:, :3], atol=1e-5)
    assert np.abs(out_a[:, 3] - out_b[:, 3]).max() > 1e-3  # "dress" vs "skirt"
    # Patches never see the caption: identical whatever the text.
    np.testing.assert_allclose(out_a[:, 16:], out_b[:, 16:], atol=1e-5)


def test_patches_ignore_the_caption_but_tokens_see_the_patches(model):
    a = _features("a red dress")
    b = dict(a, **{k: v + 1.0 for k, v in a.items() if k.startswith("img_feature_convert")})
    out_a, out_b = model(a)["sequence_output"].numpy(), model(b)["sequence_output"].numpy()
    assert np.abs(out_a[:, :3] - out_b[:, :3]).max() > 1e-3


def test_backbone_default_path_unchanged(model):
    """An all-ones full mask is the key-mask path: the default attention is untouched."""
    feats = _features("a blue silk shirt")
    seq, pooled = model.backbone(feats)
    ones = tf.ones([1, 16 + 55, 16 + 55], tf.int32)
    seq_full, pooled_full = model.backbone(feats, attention_mask=ones)
    np.testing.assert_allclose(seq.numpy(), seq_full.numpy(), atol=1e-6)
    np.testing.assert_allclose(pooled.numpy(), pooled_full.numpy(), atol=1e-6)
    # And the key mask still applies on top of a full mask: padding keys are ignored.
    padded = dict(feats, input_ids=np.where(feats["input_mask"] == 1, feats["input_ids"], 7))
    seq_padded, _ = model.backbone(padded, attention_mask=ones)
    np.testing.assert_allclose(seq_padded.numpy()[:, :6], seq.numpy()[:, :6], atol=1e-5)
