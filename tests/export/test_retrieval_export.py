"""The retrieval SavedModel: embed_text (raw strings, WordPiece in the graph), embed_image and itm_score give
the model's values after a save and a load."""

import numpy as np
import tensorflow as tf

from kaleido_tf.export.exporter import export_saved_model
from kaleido_tf.model_zoo.registry import from_pretrained
from tests.export.conftest import (
    TEXTS,
    TINY_CHECKPOINT,
    expected_text_inputs,
    export_info,
    golden_features,
    load_golden,
    signature_inputs,
    write_vocab,
)


def test_retrieval_signatures_match_the_model(tmp_path):
    model = from_pretrained(TINY_CHECKPOINT, task="retrieval", itc_embedding_size=8, image_prefix_ids=(2, 3))
    path = export_saved_model(model, tmp_path / "export", vocab_file=write_vocab(tmp_path / "vocab.txt"))
    info = export_info(path)
    assert info["task"] == "retrieval" and info["default_signature"] == "embed_text"
    assert set(info["signatures"]) == {"embed_text", "embed_text_ids", "embed_image", "itm_score"}
    loaded = tf.saved_model.load(path)

    text_inputs = expected_text_inputs()
    want_text = model.embed_text({k: tf.constant(v) for k, v in text_inputs.items()}).numpy()
    got_text = loaded.signatures["embed_text"](text=tf.constant(TEXTS))["embedding"].numpy()
    np.testing.assert_allclose(got_text, want_text, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(got_text, axis=-1), 1.0, atol=1e-5)

    features = golden_features(load_golden())
    image_signature = loaded.signatures["embed_image"]
    got_image = image_signature(**signature_inputs(image_signature, features))["embedding"].numpy()
    want_image = model.embed_image({k: tf.constant(v) for k, v in features.items()}).numpy()
    np.testing.assert_allclose(got_image, want_image, atol=1e-5, rtol=0)

    itm = loaded.signatures["itm_score"]
    got = itm(**signature_inputs(itm, features))
    want = model.itm_logits({k: tf.constant(v) for k, v in features.items()}).numpy()
    np.testing.assert_allclose(got["logits"].numpy(), want, atol=1e-5, rtol=0)
    probability = np.exp(want[:, 1]) / np.exp(want).sum(-1)
    np.testing.assert_allclose(got["match_probability"].numpy(), probability, atol=1e-5)
