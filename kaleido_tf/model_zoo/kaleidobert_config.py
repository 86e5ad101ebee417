"""KaleidoBERTConfig: one dataclass, read and written as EasyTransfer's `config.json`."""

import dataclasses
import json
import os
from typing import Any

from kaleido_tf.utils.io import atomic_write_text, read_json_file
from kaleido_tf.utils.kaleido_levels import LEVELS, seq_len_key

_INT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "max_position_embeddings",
    "type_vocab_size",
    "patch_feature_size",
    "patch_type_vocab_size",
    "max_patch_position_embeddings",
    "text_seq_len",
    "img_rotation_seq_len",
    "img_jigsaw_seq_len",
    "img_camouflage_seq_len",
    "img_greymask_seq_len",
    "img_blankmask_seq_len",
    "img_rotation_label_num",
    "img_jigsaw_label_num",
    "img_camouflage_label_num",
    "masked_greymask_patch_num",
    "masked_blankmask_patch_num",
)
_FLOAT_FIELDS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range")


@dataclasses.dataclass
class KaleidoBERTConfig:
    """Every key of the original `config.json`, with the base model's values as defaults.

    Keys the original config class never declared (text_seq_len, the per-level lengths and label counts, the
    masked patch counts) are first-class fields here. Unknown keys are kept in `extra` and written back, as
    EasyTransfer reads every key of the file into its config object.

    `patch_type_vocab_size` defaults to 2 as in the original class: with it, levels 2 to 5 get no type
    embedding at all (ORIGINAL.md quirk 1). Use the value stored beside a checkpoint.
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    initializer_range: float = 0.02
    patch_feature_size: int = 2048
    patch_type_vocab_size: int = 2
    max_patch_position_embeddings: int = 64
    text_seq_len: int = 64
    img_rotation_seq_len: int = 1
    img_jigsaw_seq_len: int = 4
    img_camouflage_seq_len: int = 9
    img_greymask_seq_len: int = 16
    img_blankmask_seq_len: int = 25
    img_rotation_label_num: int = 4
    img_jigsaw_label_num: int = 24
    img_camouflage_label_num: int = 9
    masked_greymask_patch_num: int = 2
    masked_blankmask_patch_num: int = 3
    model_type: str = "kaleidobert"
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.validate()

    # ----------------------------------------------------------------- checks
    def validate(self, source="config"):
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    setattr(self, name, int(value))
                    continue
                raise ValueError(f"{source}: key '{name}' must be an integer, got {value!r}")
            if value <= 0:
                raise ValueError(f"{source}: key '{name}' must be positive, got {value}")
        for name in _FLOAT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{source}: key '{name}' must be a number, got {value!r}")
            setattr(self, name, float(value))
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{source}: key '{name}' must be in [0, 1), got {getattr(self, name)}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"{source}: hidden_size ({self.hidden_size}) must be a multiple of "
                f"num_attention_heads ({self.num_attention_heads})"
            )
        if self.model_type != "kaleidobert":
            raise ValueError(f"{source}: key 'model_type' must be 'kaleidobert', got {self.model_type!r}")
        if self.masked_greymask_patch_num > self.img_greymask_seq_len:
            raise ValueError(f"{source}: masked_greymask_patch_num exceeds img_greymask_seq_len")
        if self.masked_blankmask_patch_num > self.img_blankmask_seq_len:
            raise ValueError(f"{source}: masked_blankmask_patch_num exceeds img_blankmask_seq_len")
        return self

    # ----------------------------------------------------------------- views
    def level_lengths(self):
        """[(level name, schema suffix, patches)] in sequence order."""
        return [(name, suffix, getattr(self, seq_len_key(name))) for name, suffix in LEVELS]

    @property
    def num_patches(self):
        return sum(n for _, _, n in self.level_lengths())

    @property
    def sequence_length(self):
        return self.text_seq_len + self.num_patches

    # ----------------------------------------------------------------- I/O
    def to_dict(self):
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, data, source="config"):
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        config = cls.__new__(cls)
        for f in dataclasses.fields(cls):
            if f.name == "extra":
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            setattr(config, f.name, kwargs.get(f.name, default))
        config.extra = extra
        return config.validate(source)

    def to_json_string(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json_file(cls, path):
        path = os.fspath(path)
        return cls.from_dict(read_json_file(path, "config file"), source=path)

    def to_json_file(self, path):
        atomic_write_text(path, self.to_json_string())

    def replace(self, **changes):
        data = self.to_dict()
        data.update(changes)
        return type(self).from_dict(data)
