"""The output layout of a preprocessing run and its per-shard bookkeeping (paths, done markers).

A shard's outputs are renamed into place before its done marker `_shards/<task>.<shard>.json` is written;
a rerun skips a task whose marker matches the settings' fingerprint and whose files all exist.
"""

import json
import os

from kaleido_tf.datasets.tfrecord_writer import shard_filename
from kaleido_tf.utils.io import atomic_write_text

PRETRAIN_SPLITS = ("train", "valid")
FINETUNE_SPLITS = ("train", "valid", "test")
DIRECTIONS = ("txt2img", "img2txt")
TASK_ORDER = ("pretrain", "finetune", "retrieval")
SHARD_DIR = "_shards"


class ShardSettingsMismatch(ValueError):
    """A finished shard was written with other settings; rerun with --overwrite to replace it."""


def shard_name(index, num_shards):
    return f"part-{index:05d}-of-{num_shards:05d}"


class ShardBook:
    """Paths and done markers of one shard of a run.

    Args:
      output_dir: absolute output directory.
      config: the PreprocessConfig (shard_index, num_shards, compression, overwrite).
      fingerprint: the settings' fingerprint stored in every marker.
    """

    def __init__(self, output_dir, config, fingerprint):
        self.out = output_dir
        self.config = config
        self.fingerprint = fingerprint
        self.shard_name = shard_name(config.shard_index, config.num_shards)

    def path(self, *parts):
        """A path under the output directory."""
        return os.path.join(self.out, *parts)

    def shard_path(self, *parts):
        """This shard's TFRecord file in the directory `parts`."""
        c = self.config
        return os.path.join(self.out, *parts, shard_filename(c.shard_index, c.num_shards, c.compression))

    def marker_path(self, task, shard=None):
        return os.path.join(self.out, SHARD_DIR, f"{task}.{shard or self.shard_name}.json")

    def _read_marker(self, task):
        path = self.marker_path(task)
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    def is_done(self, task):
        """True when this shard's `task` outputs exist and match the settings."""
        marker = self._read_marker(task)
        if marker is None or self.config.overwrite:
            return False
        if marker.get("fingerprint") != self.fingerprint:
            raise ShardSettingsMismatch(
                f"{self.marker_path(task)}: shard {self.shard_name} of '{task}' was written with other settings "
                f"(fingerprint {marker.get('fingerprint')} != {self.fingerprint}); use --overwrite or another "
                f"--output_dir"
            )
        return all(os.path.exists(os.path.join(self.out, p)) for p in marker.get("files", []))

    def write_marker(self, task, counts, files=()):
        document = {
            "task": task,
            "shard": self.shard_name,
            "fingerprint": self.fingerprint,
            "files": [os.path.relpath(p, self.out) for p in files],
            "counts": counts,
        }
        atomic_write_text(self.marker_path(task), json.dumps(document, indent=2, sort_keys=True) + "\n")

    def done_markers(self, task):
        """{shard name: marker} of the finished shards of `task` (this run's shard count)."""
        n = self.config.num_shards
        markers = {}
        for i in range(n):
            name = shard_name(i, n)
            path = self.marker_path(task, name)
            if os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    marker = json.load(f)
                if marker.get("fingerprint") == self.fingerprint:
                    markers[name] = marker
        return markers
