"""The `caption` signature of the SavedModel export gives the Keras model's captions."""

import numpy as np
import pytest
import tensorflow as tf

from kaleido_tf.export import export_saved_model
from kaleido_tf.export.caption_module import CaptionDecoder
from kaleido_tf.model_zoo import caption_decoding
from tests.caption.caption_data import VOCAB, random_patches
from tests.export.conftest import export_info, signature_inputs


@pytest.fixture(scope="module")
def exported(trained, vocab_file, tmp_path_factory):
    task, model, features, _ = trained
    path = export_saved_model(
        model, str(tmp_path_factory.mktemp("caption_export")), vocab_file=vocab_file, beam_size=2, max_caption_length=10
    )
    return path, tf.saved_model.load(path)


def test_caption_signature_matches_the_keras_model(trained, exported):
    task, model, features, _ = trained
    path, loaded = exported
    signature = loaded.signatures["caption"]
    patches = {k: v.numpy() for k, v in features.items() if k.startswith(("img_feature_convert_", "img_loc_position_"))}
    # The trained batch and some images the model never saw.
    for batch in (patches, random_patches(3, seed=7)):
        out = signature(**{k: tf.constant(v) for k, v in signature_inputs(signature, batch).items()})
        keras_ids = model.generate(batch, max_length=10, beam_size=2).numpy()
        np.testing.assert_array_equal(out["token_ids"].numpy(), keras_ids)
        captions = [c.decode("utf-8") for c in out["caption"].numpy()]
        assert captions == task.decode(keras_ids)
    assert any("sleeves" in c for c in task.decode(model.generate(patches).numpy()))  # a ## piece was joined
    info = export_info(path)
    assert info["default_signature"] == "caption" and info["task"] == "caption"
    assert info["caption"]["beam_size"] == 2 and info["caption"]["max_length"] == 10
    assert info["caption"]["special_ids"] == {"pad_id": 0, "cls_id": 2, "sep_id": 3, "mask_id": 4}
    assert set(info["signatures"]["caption"]["inputs"]) == set(patches)


def test_bad_width_is_named(exported):
    _, loaded = exported
    signature = loaded.signatures["caption"]
    inputs = {k: tf.constant(v) for k, v in signature_inputs(signature, random_patches(1)).items()}
    inputs["img_feature_convert_jigsaw"] = inputs["img_feature_convert_jigsaw"][:, :10]
    with pytest.raises(tf.errors.InvalidArgumentError, match="img_feature_convert_jigsaw: expected width 192"):
        signature(**inputs)


def test_decoder_matches_python_decoding(vocab_file):
    tokens = caption_decoding.CaptionTokens(pad_id=0, cls_id=2, sep_id=3, mask_id=4)
    ids = np.array(
        [[5, 6, 10, 18, 21, 3, 7, 0], [4, 2, 7, 17, 0, 0, 0, 0], [3, 5, 5, 5, 5, 5, 5, 5], [17, 6, 1, 19, 22, 9, 9, 9]]
    )
    graph = [c.decode() for c in CaptionDecoder(vocab_file, tokens)(tf.constant(ids)).numpy()]
    python = caption_decoding.batch_ids_to_text(ids, VOCAB, tokens)
    assert graph == python == ["a red dresses ,", "blues", "", "##s red [UNK]less . white white white"]
