"""KaleidoBERTConfig reads and writes EasyTransfer's config.json."""

import json

import pytest

from kaleido_tf import KaleidoBERTConfig
from tests.core.conftest import golden_dir


def test_base_defaults():
    c = KaleidoBERTConfig()
    assert (c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads) == (30522, 768, 12, 12)
    assert c.patch_type_vocab_size == 2 and c.patch_feature_size == 2048
    assert c.num_patches == 55 and c.sequence_length == 64 + 55


def test_round_trip_keeps_every_key_including_unknown(tmp_path):
    data = json.load(open(f"{golden_dir('tiny')}/config.json"))
    data["hidden_act"] = "gelu"  # a key the class does not declare
    src = tmp_path / "in.json"
    src.write_text(json.dumps(data))
    config = KaleidoBERTConfig.from_json_file(src)
    assert config.hidden_size == 32 and config.extra == {"hidden_act": "gelu"}
    out = tmp_path / "out.json"
    config.to_json_file(out)
    assert json.loads(out.read_text()) == {**KaleidoBERTConfig().to_dict(), **data}
    assert KaleidoBERTConfig.from_json_file(out) == config


@pytest.mark.parametrize(
    "change,message",
    [
        ({"hidden_size": "big"}, "'hidden_size' must be an integer"),
        ({"num_attention_heads": 5}, "multiple of num_attention_heads"),
        ({"hidden_dropout_prob": 1.5}, "'hidden_dropout_prob' must be in"),
        ({"model_type": "bert"}, "'model_type'"),
        ({"vocab_size": 0}, "'vocab_size' must be positive"),
    ],
)
def test_bad_values_name_the_key_and_file(tmp_path, change, message):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**KaleidoBERTConfig().to_dict(), **change}))
    with pytest.raises(ValueError, match=message) as info:
        KaleidoBERTConfig.from_json_file(path)
    assert str(path) in str(info.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="config file not found"):
        KaleidoBERTConfig.from_json_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"hidden_size": 32,\n oops}')
    with pytest.raises(ValueError, match=r"bad.json: not valid JSON \(line 2"):
        KaleidoBERTConfig.from_json_file(bad)
