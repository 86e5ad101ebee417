"""A --model_config that disagrees with the config.json of the run already in --model_dir is an error naming both
files and the differing keys (never a silent reuse of the stored one)."""

import json
import os

import pytest

from kaleido_tf.apps import runner
from kaleido_tf.model_zoo import registry
from tests.apps.tiny_data import tiny_config


class Flags(dict):
    __getattr__ = dict.get

    def __getitem__(self, name):
        return type("Flag", (), {"present": name in self})()


def _run_dir(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps(tiny_config()))
    (model_dir / registry.TRAINER_MARKER).write_text(json.dumps({"task": "pretrain"}))
    return model_dir


def _flags(model_dir, model_config):
    return Flags(
        mode="train", model_dir=str(model_dir), model_config=str(model_config), pretrain_model_name_or_path="random"
    )


def test_differing_model_config_names_both_files_and_keys(tmp_path):
    model_dir = _run_dir(tmp_path)
    given = tmp_path / "new_config.json"
    config = tiny_config()
    given.write_text(json.dumps({**config, "type_vocab_size": config["type_vocab_size"] + 1, "text_seq_len": 24}))
    with pytest.raises(runner.UsageError) as caught:
        runner.resolve_config(_flags(model_dir, given))
    message = str(caught.value)
    assert message.startswith(f"--model_config {given} differs from {os.path.join(model_dir, 'config.json')} ")
    assert f"text_seq_len: 24 in the one, {config['text_seq_len']} in the other" in message
    assert (
        f"type_vocab_size: {config['type_vocab_size'] + 1} in the one, {config['type_vocab_size']} in the other"
        in message
    )
    assert f"delete {os.path.join(model_dir, 'config.json')} to start afresh" in message  # no checkpoint yet
    assert "\n" not in message


def test_the_same_model_config_resumes_with_it(tmp_path):
    model_dir = _run_dir(tmp_path)
    given = tmp_path / "same.json"
    given.write_text(json.dumps(tiny_config()))
    assert (
        runner.resolve_config(_flags(model_dir, given)).to_dict()
        == runner.registry.config_for(str(model_dir)).to_dict()
    )
