"""Settings of a preprocessing run (one field per `kaleido-preprocess` flag)."""

import dataclasses
import hashlib
import json
import os

from kaleido_tf.preprocessors.feature_extractor import EXTRACTOR_NAMES
from kaleido_tf.preprocessors.foreground import FOREGROUND_METHODS
from kaleido_tf.preprocessors.hashing import SPLITS
from kaleido_tf.preprocessors.image_settings import ImageSettings
from kaleido_tf.preprocessors.text_tokenizer import TOKENIZER_NAMES

TASKS = ("pretrain", "finetune", "retrieval")

# Fields that do not change what is written (where it goes, how fast, how verbose).
_NOT_IN_FINGERPRINT = {
    "output_dir",
    "task",
    "num_shards",
    "shard_index",
    "overwrite",
    "progress",
    "batch_size",
    "images_per_chunk",
    "feature_cache_size",
}


@dataclasses.dataclass(kw_only=True)
class PreprocessConfig(ImageSettings):
    """All preprocessing settings (keyword arguments); see docs/preprocessing.md for their meaning."""

    catalog: str
    output_dir: str
    task: str = "all"
    alignments: object = None
    label_maps: object = None
    seed: int = 12345
    # images, patches and features: the fields of ImageSettings, and
    image_path: str = "pil"  # "graph": crop features through the TF-ops path (preprocessors/graph_extractor.py)
    mixed_bfloat16: bool = False  # with image_path "graph" and resnet50: bfloat16 matmuls
    compression: object = None
    batch_size: int = 64
    images_per_chunk: int = 8
    # text
    tokenizer: str = "wordpiece"
    vocab: object = None
    spm_model: object = None
    lower_case: object = None
    text_length: int = 64
    max_predictions: int = 10
    masked_lm_prob: float = 0.15
    whole_word_mask: bool = False
    # kaleido tasks and pairs
    num_grey: int = 2
    num_blank: int = 3
    camouflage_none_class: bool = False
    neg_ratio: float = 1.0
    itm_easy_negatives: float = 0.0  # share of ITM negatives drawn from other categories
    # splits
    split_seed: object = None  # seed of the hash split; --seed when None
    valid_fraction: float = 0.05
    test_fraction: float = 0.05
    # retrieval
    retrieval_split: str = "test"
    retrieval_queries: int = 1000
    retrieval_negatives: int = 100
    feature_cache_size: int = 256
    # scale and robustness
    num_shards: int = 1
    shard_index: int = 0
    bad_records: str = "error"
    overwrite: bool = False
    progress: bool = True

    @property
    def tasks(self):
        """The requested tasks, in pipeline order."""
        names = [t.strip() for t in str(self.task).split(",") if t.strip()]
        if "all" in names:
            return TASKS
        unknown = [t for t in names if t not in TASKS]
        if unknown or not names:
            raise ValueError(
                f"--task must be pretrain, finetune, retrieval or all (comma-separated), got {self.task!r}"
            )
        return tuple(t for t in TASKS if t in names)

    def validate(self):
        """Raises ValueError naming the flag of the first bad setting."""

        def need(cond, message):
            if not cond:
                raise ValueError(message)

        self.tasks  # noqa: B018  (validates --task)
        need(os.path.isfile(self.catalog), f"--catalog file not found: {self.catalog}")
        need(bool(self.output_dir), "--output_dir is required")
        need(self.foreground in FOREGROUND_METHODS, f"--foreground must be one of {FOREGROUND_METHODS}")
        need(self.feature_extractor in EXTRACTOR_NAMES, f"--feature_extractor must be one of {EXTRACTOR_NAMES}")
        need(self.image_path in ("pil", "graph"), "--image_path must be 'pil' or 'graph'")
        need(not self.mixed_bfloat16 or self.image_path == "graph", "--mixed_bfloat16 needs --image_path graph")
        need(
            self.feature_extractor != "keras" or bool(self.feature_model),
            "--feature_extractor keras needs --feature_model (a saved .keras model)",
        )
        need(
            not self.feature_model or self.feature_extractor == "keras",
            f"--feature_model is given but --feature_extractor is {self.feature_extractor!r}",
        )
        if self.feature_model:
            need(os.path.isfile(self.feature_model), f"--feature_model file not found: {self.feature_model}")
        need(self.tokenizer in TOKENIZER_NAMES, f"--tokenizer must be one of {TOKENIZER_NAMES}")
        need(self.feature_dtype in ("float16", "float32"), "--feature_dtype must be float16 or float32")
        need(self.compression in (None, "GZIP"), "--compression must be none or gzip")
        need(self.crop_size >= 8, f"--crop_size must be >= 8, got {self.crop_size}")
        need(self.patch_feature_size >= 1, f"--patch_feature_size must be >= 1, got {self.patch_feature_size}")
        need(self.text_length >= 3, f"--text_length must be >= 3, got {self.text_length}")
        need(self.max_predictions >= 1, f"--max_predictions must be >= 1, got {self.max_predictions}")
        need(0.0 < self.masked_lm_prob <= 1.0, f"--masked_lm_prob must be in (0, 1], got {self.masked_lm_prob}")
        need(1 <= self.num_grey <= 16, f"--num_grey must be in 1..16, got {self.num_grey}")
        need(1 <= self.num_blank <= 25, f"--num_blank must be in 1..25, got {self.num_blank}")
        need(self.neg_ratio >= 0.0, f"--neg_ratio must be >= 0, got {self.neg_ratio}")
        need(
            0.0 <= self.itm_easy_negatives <= 1.0,
            f"--itm_easy_negatives must be in [0, 1], got {self.itm_easy_negatives}",
        )
        need(
            self.valid_fraction >= 0 and self.test_fraction >= 0 and self.valid_fraction + self.test_fraction <= 1,
            "--valid_fraction and --test_fraction must be >= 0 and sum to at most 1",
        )
        need(self.retrieval_split in SPLITS, f"--retrieval_split must be one of {SPLITS}")
        need(self.retrieval_queries >= 1, f"--retrieval_queries must be >= 1, got {self.retrieval_queries}")
        need(self.retrieval_negatives >= 1, f"--retrieval_negatives must be >= 1, got {self.retrieval_negatives}")
        need(self.num_shards >= 1, f"--num_shards must be >= 1, got {self.num_shards}")
        need(
            0 <= self.shard_index < self.num_shards,
            f"--shard_index must be in 0..{self.num_shards - 1}, got {self.shard_index}",
        )
        need(self.bad_records in ("error", "reject"), "--bad_records must be error or reject")
        need(self.batch_size >= 1 and self.images_per_chunk >= 1, "--batch_size and --images_per_chunk must be >= 1")
        need(
            1 <= self.min_image_size <= self.max_image_size,
            f"need 1 <= --min_image_size <= --max_image_size, got {self.min_image_size}, {self.max_image_size}",
        )
        need(self.min_image_size >= 5, f"--min_image_size must be >= 5 (the 5x5 grid), got {self.min_image_size}")
        need(self.feature_cache_size >= 1, "--feature_cache_size must be >= 1")
        if self.alignments:
            need(os.path.isfile(self.alignments), f"--alignments file not found: {self.alignments}")
        return self

    def fingerprint(self):
        """A short hash of every setting that changes the content of the outputs."""
        items = {k: v for k, v in dataclasses.asdict(self).items() if k not in _NOT_IN_FINGERPRINT}
        if items.get("image_path") == "pil" and not items.get("mixed_bfloat16"):  # unchanged for PIL-path runs
            items.pop("image_path")
            items.pop("mixed_bfloat16")
        for key in ("catalog", "alignments", "resnet_weights", "vocab", "spm_model"):
            path = items.get(key)
            if path and os.path.isfile(path):
                items[key] = [os.path.basename(path), os.path.getsize(path)]
        if items.get("feature_model") and os.path.isfile(items["feature_model"]):  # retrained in place: hash it
            with open(items["feature_model"], "rb") as f:
                items["feature_model"] = hashlib.sha256(f.read()).hexdigest()
        text = json.dumps(items, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def to_dict(self):
        return dataclasses.asdict(self)
