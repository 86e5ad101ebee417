"""The unimodal backbone passes and the retrieval model (embed_text, embed_image, itm_logits)."""

import numpy as np
import tensorflow as tf

from kaleido_tf.model_zoo.kaleidobert_backbone import IMAGE_PREFIX_IDS, KaleidoBERTBackbone
from kaleido_tf.model_zoo.kaleidobert_pretrain_model import KaleidoBERTPretrainModel
from kaleido_tf.model_zoo.kaleidobert_retrieval_model import KaleidoBERTRetrievalModel
from tests.harness import run_layer_test
from tests.model_zoo.test_task_models import CONFIG, B, N, T, _features

D = 4


def _backbone():
    backbone = KaleidoBERTBackbone.from_kaleido_config(
        CONFIG, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )
    backbone.build()
    return backbone


def _image_only(features):
    return {k: v for k, v in features.items() if k.startswith("img_feature_convert_") or k.startswith("img_loc_")}


def test_encode_text_is_the_text_rows_of_a_text_only_full_pass():
    backbone, features = _backbone(), _features()
    text_only = {k: features[k] for k in ("input_ids", "input_mask", "segment_ids")}
    sequence, pooled = backbone.encode_text(text_only)
    assert tuple(sequence.shape) == (B, T, CONFIG.hidden_size)
    # The full pass with every patch masked out computes the same text rows on a longer sequence.
    full_sequence, _ = backbone(text_only)
    assert full_sequence.shape[1] == T + N
    np.testing.assert_allclose(sequence.numpy(), full_sequence.numpy()[:, :T], atol=1e-5, rtol=0)
    np.testing.assert_allclose(pooled.numpy(), backbone.pooler(full_sequence[:, 0]).numpy(), atol=1e-5, rtol=0)


def test_encode_image_is_the_full_pass_with_a_cls_sep_text():
    backbone, features = _backbone(), _features()
    images = _image_only(features)
    sequence, pooled = backbone.encode_image(images)
    assert tuple(sequence.shape) == (B, 2 + N, CONFIG.hidden_size)
    prefix = tf.constant([list(IMAGE_PREFIX_IDS)] * B, tf.int32)
    full_sequence, full_pooled = backbone({**images, "input_ids": prefix})
    np.testing.assert_allclose(sequence.numpy(), full_sequence.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(pooled.numpy(), full_pooled.numpy(), atol=1e-5, rtol=0)
    # The text of the features is ignored.
    with_text, _ = backbone.encode_image(features)
    np.testing.assert_allclose(with_text.numpy(), sequence.numpy(), atol=1e-6, rtol=0)


def test_retrieval_model_checks_and_interface(tmp_path):
    kwargs = {"config": CONFIG.to_dict(), "itc_embedding_size": D}
    shapes = {
        "text_embedding": (B, D),
        "image_embedding": (B, D),
        "temperature": (),
        "pooled_output": (B, CONFIG.hidden_size),
        "itm_logits": (B, 2),
    }
    features = _features()
    model, out = run_layer_test(
        KaleidoBERTRetrievalModel,
        kwargs,
        features,
        shapes,
        tmp_path,
        run_precision=False,
        run_saving=False,
    )
    text = model.embed_text({k: features[k] for k in ("input_ids", "input_mask", "segment_ids")})
    image = model.embed_image(_image_only(features))
    for x, key in ((text, "text_embedding"), (image, "image_embedding")):
        assert x.dtype == tf.float32 and tuple(x.shape) == (B, D)
        np.testing.assert_allclose(np.linalg.norm(x.numpy(), axis=-1), 1.0, atol=1e-6)
        np.testing.assert_allclose(x.numpy(), out[key].numpy(), atol=1e-6, rtol=0)
    # itm_logits is the pretraining model's nsp_logits with the same backbone and ITM head weights.
    pretrain = KaleidoBERTPretrainModel(CONFIG)
    pretrain.build()
    pretrain.backbone.set_weights(model.backbone.get_weights())
    pretrain.itm_head.set_weights(model.itm_head.get_weights())
    want = pretrain(features, mode="predict")["nsp_logits"]
    np.testing.assert_allclose(model.itm_logits(features).numpy(), want.numpy(), atol=1e-5, rtol=0)


def test_from_pretrained_starts_the_itc_head_fresh_and_says_so():
    import os

    from kaleido_tf.model_zoo.registry import from_pretrained
    from tests.conftest import GOLDEN

    model = from_pretrained(os.path.join(GOLDEN, "tiny", "model.ckpt-0"), task="retrieval", itc_embedding_size=D)
    report = model.load_report
    from kaleido_tf.convert.tf1_converter import model_variable_paths

    paths = model_variable_paths(model)  # {checkpoint-map path: variable}
    head = {path for path, v in paths.items() if v.path.split("/")[1] == "itc_head"}
    assert sorted(report.initialised) == sorted(head) and len(head) == 5
    assert all("Adam" in why or "step" in why for _, why in report.skipped)  # optimizer state only
    assert report.not_used  # the other pretraining heads are left out
    assert {a.target for a in report.assigned} == set(paths) - head
    # The ITM head is the pretraining model's: the same logits as the checkpoint's pretraining model.
    pretrain = from_pretrained(os.path.join(GOLDEN, "tiny", "model.ckpt-0"))
    import numpy as np

    golden = np.load(os.path.join(GOLDEN, "tiny", "golden.npz"))
    feats = {k[len("input/") :]: tf.constant(golden[k]) for k in golden.files if k.startswith("input/")}
    np.testing.assert_allclose(
        model.itm_logits(feats).numpy(), pretrain.itm_logits(feats)["nsp_logits"].numpy(), atol=1e-5, rtol=0
    )


def test_image_prefix_ids_from_the_config_key_reach_every_builder(tmp_path):
    from kaleido_tf.model_zoo import registry
    from kaleido_tf.model_zoo.kaleidobert_retrieval_model import image_prefix_ids_from_vocab
    from kaleido_tf.tasks.retrieval_task import RetrievalTask
    from kaleido_tf.utils.model_dir import TRAINER_MARKER

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nred\n", encoding="utf-8")
    assert image_prefix_ids_from_vocab(str(vocab)) == [2, 3]
    config = CONFIG.replace(image_prefix_ids=image_prefix_ids_from_vocab(str(vocab)))
    assert KaleidoBERTRetrievalModel(CONFIG).image_prefix_ids == IMAGE_PREFIX_IDS  # the released vocab's
    assert registry.build_model(config, task="retrieval", itc_embedding_size=D).image_prefix_ids == (2, 3)
    model = RetrievalTask(config, itc_embedding_size=D).build_model()
    assert model.image_prefix_ids == (2, 3)
    assert KaleidoBERTRetrievalModel(config, image_prefix_ids=(5, 3)).image_prefix_ids == (5, 3)  # argument wins
    # A training model_dir records the key in config.json: the model loaded again takes the same prefix.
    run = tmp_path / "run"
    run.mkdir()
    config.to_json_file(str(run / "config.json"))
    (run / TRAINER_MARKER).write_text('{"task": "retrieval"}\n', encoding="utf-8")
    tf.train.Checkpoint(model=model).save(str(run / "ckpt"))
    loaded = registry.from_pretrained(str(run), task="retrieval", itc_embedding_size=D)
    assert loaded.image_prefix_ids == (2, 3)
    features = _image_only(_features())
    np.testing.assert_allclose(loaded.embed_image(features).numpy(), model.embed_image(features).numpy(), atol=1e-6)
    other = KaleidoBERTRetrievalModel(config, image_prefix_ids=IMAGE_PREFIX_IDS, itc_embedding_size=D)
    other.build()
    other.set_weights(model.get_weights())
    assert np.abs(other.embed_image(features).numpy() - model.embed_image(features).numpy()).max() > 1e-4


def test_image_prefix_ids_outside_the_vocab_are_refused(tmp_path):
    import pytest

    from kaleido_tf.model_zoo.kaleidobert_retrieval_model import image_prefix_ids_from_vocab

    with pytest.raises(ValueError, match="below vocab_size 110"):
        KaleidoBERTRetrievalModel(CONFIG.replace(image_prefix_ids=[2, 200]))
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[CLS]\nred\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"no \[SEP\] token"):
        image_prefix_ids_from_vocab(str(vocab))
