"""Input that cannot fit the model is refused before any graph runs, naming the field and both values; shards of
another task given to pretraining are named as such (not a bare KeyError: 'masked_lm_weights')."""

import pytest

from kaleido_tf.apps import runner
from kaleido_tf.datasets import Schema, get_schema
from kaleido_tf.model_zoo.kaleidobert_config import KaleidoBERTConfig
from tests.apps.tiny_data import schema_string, tiny_config


@pytest.fixture
def config():
    return KaleidoBERTConfig.from_dict(tiny_config())


def test_tiny_pretrain_input_fits(config):
    runner.check_schema_fits(config, Schema.parse(schema_string("pretrain")), "shards", task_name="pretrain")


def test_patch_feature_size_disagreement_names_field_and_both_values(config):
    wrong = config.replace(patch_feature_size=config.patch_feature_size * 2)
    with pytest.raises(runner.UsageError) as caught:
        runner.check_schema_fits(wrong, Schema.parse(schema_string("pretrain")), "DIR/schema.json")
    assert str(caught.value) == (
        f"DIR/schema.json: field img_feature_convert_rotation has length {config.patch_feature_size}, but the "
        f"model config's patch_feature_size={wrong.patch_feature_size} needs {wrong.patch_feature_size}; give a "
        f"--model_config whose patch_feature_size matches the input (or preprocess the input again with the config's)"
    )


def test_text_seq_len_disagreement_names_field_and_both_values(config):
    wrong = config.replace(text_seq_len=config.text_seq_len + 8)
    with pytest.raises(
        runner.UsageError,
        match=(
            f"field input_ids has length {config.text_seq_len}, but the model config's "
            f"text_seq_len={wrong.text_seq_len} needs {wrong.text_seq_len}"
        ),
    ):
        runner.check_schema_fits(wrong, Schema.parse(schema_string("pretrain")), "DIR/schema.json")


def test_finetune_shards_given_to_pretraining_are_named(config):
    finetune = Schema.parse(schema_string("finetune"))
    with pytest.raises(runner.UsageError) as caught:
        runner.check_schema_fits(config, finetune, "DIR/schema.json", task_name="pretrain")
    message = str(caught.value)
    assert message.startswith(
        "DIR/schema.json lacks the field(s) masked_lm_positions, masked_lm_ids, masked_lm_weights"
    )
    assert "it is not pretraining input" in message and "OUTPUT_DIR/pretrain/" in message
    runner.check_schema_fits(config, finetune, "DIR/schema.json", task_name="catepred")  # right for finetuning


def test_input_schema_flag_is_checked(config):
    wrong = config.replace(text_seq_len=config.text_seq_len + 8)
    with pytest.raises(runner.UsageError, match="--input_schema .*field input_ids has length"):
        runner.input_schema(schema_string("pretrain"), wrong, "list.txt")
    assert runner.input_schema(schema_string("pretrain"), config, "list.txt") == get_schema(
        schema_string("pretrain"), expected_lengths=None
    )
