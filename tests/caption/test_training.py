"""The captioner: loading from pretraining checkpoints, config round trip, training reduces the loss and learns."""

import numpy as np
import pytest
import tensorflow as tf

from kaleido_tf.engines import Trainer
from kaleido_tf.model_zoo import KaleidoBERTCaptioner, KaleidoBERTPretrainModel, registry
from kaleido_tf.tasks import PretrainTask
from kaleido_tf.tasks.caption_task import CaptionTask
from tests.caption.caption_data import CAPTIONS, SPECIAL_IDS, TINY_CHECKPOINT, random_patches


def test_loads_every_variable_from_a_tf1_pretraining_checkpoint():
    model = registry.from_pretrained(TINY_CHECKPOINT, task="caption", **SPECIAL_IDS)
    report = model.load_report
    assert report.initialised == []
    assert len(report.assigned) == len(model.weights)
    not_used = {name.split("/")[0] + "/" + name.split("/")[1] for name, _ in report.not_used}
    assert not any("cls/predictions" in n for n in not_used) and len(report.not_used) > 0
    pretrain = registry.from_pretrained(TINY_CHECKPOINT)
    np.testing.assert_array_equal(model.mlm_head.output_bias.numpy(), pretrain.mlm_head.output_bias.numpy())
    np.testing.assert_array_equal(
        model.backbone.embeddings.word_embeddings.numpy(), pretrain.backbone.embeddings.word_embeddings.numpy()
    )


def test_loads_a_pretraining_trainer_directory(tmp_path):
    config = registry.config_for(TINY_CHECKPOINT)
    trainer = Trainer(PretrainTask(config), str(tmp_path / "pretrain"), progress=False)
    trainer.initialize(lambda m: registry.load_weights(m, TINY_CHECKPOINT))
    trainer.save()
    captioner = registry.build_model(config, task="caption", **SPECIAL_IDS)
    message = registry.load_weights(captioner, str(tmp_path / "pretrain"))
    assert "loaded the pretrain weights" in message and "freshly" not in message
    assert isinstance(trainer.model, KaleidoBERTPretrainModel)
    np.testing.assert_array_equal(
        captioner.mlm_head.transform_dense.kernel.numpy(), trainer.model.mlm_head.transform_dense.kernel.numpy()
    )


def test_get_config_round_trip():
    config = registry.config_for(TINY_CHECKPOINT)
    model = KaleidoBERTCaptioner(config, max_caption_length=9, beam_size=2, length_penalty=0.6, **SPECIAL_IDS)
    model.build()
    clone = KaleidoBERTCaptioner.from_config(model.get_config())
    clone.build()
    assert clone.get_config() == model.get_config()
    assert clone.tokens == model.tokens and clone.max_caption_length == 9 and clone.beam_size == 2
    clone.set_weights(model.get_weights())
    patches = random_patches(2)
    np.testing.assert_array_equal(clone.generate(patches).numpy(), model.generate(patches).numpy())


def test_bad_settings_are_named(vocab_file):
    config = registry.config_for(TINY_CHECKPOINT)
    with pytest.raises(ValueError, match="max_caption_length"):
        KaleidoBERTCaptioner(config, max_caption_length=config.max_position_embeddings, **SPECIAL_IDS)
    with pytest.raises(ValueError, match="sep_id=500"):
        KaleidoBERTCaptioner(config, **dict(SPECIAL_IDS, sep_id=500))
    with pytest.raises(ValueError, match="mask_ratio"):
        CaptionTask(config, vocab_file=vocab_file, mask_ratio=0.0)
    with pytest.raises(ValueError, match="vocab_size=120"):
        CaptionTask(config)  # the packaged BERT vocab does not fit the tiny model
    model = KaleidoBERTCaptioner(config, **SPECIAL_IDS)
    with pytest.raises(ValueError, match="img_feature_convert"):
        model.generate({"input_ids": np.ones((1, 4), np.int32)})


def test_training_reduces_the_loss_and_learns_to_caption(trained):
    task, model, features, losses = trained
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:10])
    captions = task.decode(model.generate(features).numpy())
    references = task.references(features["input_ids"].numpy())
    assert references[3] == "a white cotton dress , long sleeves ."
    assert set(references) == {c.replace(" ##", "") for c in CAPTIONS}
    correct = sum(c == r for c, r in zip(captions, references))
    assert correct >= 6, list(zip(captions, references))
    # Validation: loss and caption metrics over the batch, as the trainer aggregates them.
    logs = {k: v.numpy() for k, v in tf.function(lambda f: task.validation_step(f, model))(features).items()}
    metrics = task.reduce_validation(logs)
    assert metrics["examples"] == 8 and metrics["loss"] < 1.0
    assert metrics["bleu_4"] > 50 and metrics["cider"] > 100 and "BLEU-4" in metrics["report_text"]


def test_training_masks_differ_between_steps(trained):
    task, model, features, _ = trained
    first = task.mask_features(features, model=model)["masked_lm_positions"].numpy()
    second = task.mask_features(features, model=model)["masked_lm_positions"].numpy()
    assert not np.array_equal(first, second)
    fixed = [task.mask_features(features, seed=(1, 2))["masked_lm_positions"].numpy() for _ in range(2)]
    np.testing.assert_array_equal(fixed[0], fixed[1])


@pytest.mark.parametrize("task", ["caption", "catepred"])
def test_trainer_directory_loads_every_shared_variable(tmp_path, task):
    """The encoder blocks and patch embeddings (layers held in lists) are loaded from a Trainer directory too."""
    config = registry.config_for(TINY_CHECKPOINT)
    trainer = Trainer(PretrainTask(config), str(tmp_path / "pretrain"), progress=False)
    trainer.initialize(lambda m: registry.load_weights(m, TINY_CHECKPOINT))
    trainer.save()
    kwargs = SPECIAL_IDS if task == "caption" else {"num_classes": 3}
    target = registry.build_model(config, task=task, **kwargs)
    registry.load_weights(target, str(tmp_path / "pretrain"))
    source = {v.path.split("/", 1)[1]: v.numpy() for v in trainer.model.weights}
    shared = [v for v in target.weights if v.path.split("/", 1)[1] in source]
    assert len(shared) == (len(target.weights) if task == "caption" else len(target.backbone.weights))
    assert any("encoder/layer_1" in v.path for v in shared) and any("blankmask_embeddings" in v.path for v in shared)
    for v in shared:
        np.testing.assert_array_equal(v.numpy(), source[v.path.split("/", 1)[1]], err_msg=v.path)
