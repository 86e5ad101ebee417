"""The model config follows the shards: `text_seq_len` and `patch_feature_size` that --model_config does not
set come from the training shards' schema.json (said once); a value it sets that disagrees is one line naming
both values and both files."""

import json
import os

import pytest

from kaleido_tf.apps import runner
from kaleido_tf.datasets import Schema
from kaleido_tf.datasets.tfrecord_writer import write_schema_json
from tests.apps.tiny_data import schema_string, tiny_config


class Flags(dict):
    __getattr__ = dict.get

    def __getitem__(self, name):
        return type("Flag", (), {"present": name in self})()


@pytest.fixture
def shards(tmp_path):
    directory = tmp_path / "pretrain"
    directory.mkdir()
    write_schema_json(str(directory), Schema.parse(schema_string("pretrain")), num_examples=8)
    return directory


def _resolve(tmp_path, shards, config):
    path = tmp_path / "model_config.json"
    path.write_text(json.dumps(config))
    flags = Flags(
        mode="train",
        model_dir=str(tmp_path / "model"),
        model_config=str(path),
        pretrain_model_name_or_path="random",
        train_input_fp=str(shards),
    )
    return path, runner.resolve_config(flags)


def test_unset_lengths_are_taken_from_the_shards_and_said_once(tmp_path, shards, capsys):
    tiny = tiny_config()
    given = {k: v for k, v in tiny.items() if k not in ("text_seq_len", "patch_feature_size")}
    path, config = _resolve(tmp_path, shards, given)
    assert (config.text_seq_len, config.patch_feature_size) == (tiny["text_seq_len"], tiny["patch_feature_size"])
    assert config.hidden_size == tiny["hidden_size"]  # the rest is the file's
    assert capsys.readouterr().out == (
        f"[kaleido_tf] model config: text_seq_len={tiny['text_seq_len']} and "
        f"patch_feature_size={tiny['patch_feature_size']} from {os.path.join(shards, 'schema.json')} "
        f"({path} does not set them)\n"
    )


def test_set_lengths_that_agree_are_kept_silently(tmp_path, shards, capsys):
    _, config = _resolve(tmp_path, shards, tiny_config())
    assert config.to_dict() == runner.KaleidoBERTConfig.from_dict(tiny_config()).to_dict()
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("key", ["patch_feature_size", "text_seq_len"])
def test_a_set_length_that_disagrees_names_both_values_and_both_files(tmp_path, shards, key):
    tiny = tiny_config()
    field = {"patch_feature_size": "img_feature_convert_rotation", "text_seq_len": "input_ids"}[key]
    with pytest.raises(runner.UsageError) as caught:
        _resolve(tmp_path, shards, {**tiny, key: tiny[key] * 2})
    path = tmp_path / "model_config.json"
    assert str(caught.value) == (
        f"--model_config {path} sets {key}={tiny[key] * 2}, but the shards' {os.path.join(shards, 'schema.json')} "
        f"have {key}={tiny[key]} (field {field} of length {tiny[key]}): remove {key} from {path} to take the "
        f"shards' value, or preprocess the input again with {tiny[key] * 2}"
    )
