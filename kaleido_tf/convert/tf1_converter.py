"""Reads TF1 (EasyTransfer) checkpoints and loads them into kaleido_tf models (built by the caller), strictly.

Loading fails, listing every offending name at once, when a checkpoint variable matches no rule of the name
map and no skip pattern, when a model variable has no source in the checkpoint, when a mapped checkpoint
variable has no place in the model, or when shapes disagree. Optimizer slots and bookkeeping are skipped by
the explicit patterns of `name_map.SKIP_PATTERNS`; heads of another task are reported as not used.
"""

import dataclasses
import logging
import os
import re

import numpy as np
import tensorflow as tf

from kaleido_tf.convert import name_map

logger = logging.getLogger(__name__)

_COMPILED_RENAMES = tuple((re.compile(p), t) for p, t in name_map.RENAME_RULES)
_COMPILED_FINETUNE = tuple((re.compile(p), t) for p, t in name_map.FINETUNE_HEAD_RULES)
_COMPILED_SKIPS = tuple((re.compile(p), why) for p, why in name_map.SKIP_PATTERNS)
_PRETRAIN_HEAD = re.compile(name_map.PRETRAIN_HEAD_PATTERN)
FINETUNE_HEAD = re.compile(name_map.FINETUNE_HEAD_PATTERN)


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that does not fit the model."""


class CheckpointMismatchError(CheckpointError):
    """Names or shapes of a checkpoint disagree with the model; the message lists each one."""

    def __init__(self, source, missing=(), unexpected=(), unmatched=(), mismatched=()):
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.unmatched = list(unmatched)
        self.mismatched = list(mismatched)
        lines = [f"checkpoint {source} does not fit the model:"]
        for name in self.missing:
            lines.append(f"  missing   : model variable {name} has no value in the checkpoint")
        for name in self.unexpected:
            lines.append(f"  unused    : checkpoint variable {name} has no place in the model")
        for name in self.unmatched:
            lines.append(f"  unmatched : checkpoint variable {name} matches no rule of the name map")
        for name, ckpt_shape, model_shape in self.mismatched:
            lines.append(
                f"  shape     : {name} is {list(ckpt_shape)} in the checkpoint, {list(model_shape)} in the model"
            )
        super().__init__("\n".join(lines))


@dataclasses.dataclass
class Assignment:
    source: str  # name in the checkpoint
    target: str  # Keras path relative to the model
    shape: tuple


@dataclasses.dataclass
class LoadReport:
    source: str
    assigned: list  # [Assignment]
    skipped: list  # [(checkpoint name, reason)]
    not_used: list  # [(checkpoint name, reason)]
    initialised: list  # [model path] left at their initial values (a fresh task head)

    def summary_lines(self):
        lines = [f"source: {self.source}"]
        for a in self.assigned:
            lines.append(f"  load  {a.source:<80s} -> {a.target}  {list(a.shape)}")
        for name, why in self.not_used:
            lines.append(f"  keep  {name:<80s}    not used by this model ({why})")
        for name in self.initialised:
            lines.append(f"  init  {name:<80s}    not in the checkpoint: freshly initialised")
        for name, why in self.skipped:
            lines.append(f"  skip  {name:<80s}    {why}")
        lines.append(
            f"{len(self.assigned)} loaded, {len(self.not_used)} not used by this model, "
            f"{len(self.initialised)} initialised, {len(self.skipped)} skipped"
        )
        return lines


# --------------------------------------------------------------------------- reading
def resolve_checkpoint_prefix(path):
    """A checkpoint prefix from a prefix, an `.index`/`.data-*` file, or a directory with a `checkpoint` file."""
    path = os.fspath(path)
    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is not None:
            return latest
        indexes = sorted(f[: -len(".index")] for f in os.listdir(path) if f.endswith(".index"))
        if len(indexes) == 1:
            return os.path.join(path, indexes[0])
        if not indexes:
            raise FileNotFoundError(f"no checkpoint in directory {path} (no `checkpoint` file, no *.index)")
        raise CheckpointError(f"directory {path} holds several checkpoints ({', '.join(indexes)}): name one")
    for suffix in (".index", ".meta"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    path = re.sub(r"\.data-\d+-of-\d+$", "", path)
    if not os.path.exists(path + ".index"):
        raise FileNotFoundError(f"checkpoint not found: {path}.index does not exist")
    return path


def read_checkpoint(path):
    """{name: np.ndarray} of every variable of a TF checkpoint; clear errors for absent or corrupt files."""
    prefix = resolve_checkpoint_prefix(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
        values = {name: reader.get_tensor(name) for name in sorted(shapes) if name != "_CHECKPOINTABLE_OBJECT_GRAPH"}
    except (tf.errors.OpError, ValueError, IndexError, RuntimeError, OSError) as e:
        # The checkpoint reader reports truncation or corruption with several exception types.
        message = getattr(e, "message", None) or str(e) or type(e).__name__
        raise CheckpointError(f"cannot read checkpoint {prefix}: {message.strip().splitlines()[0]}") from None
    return prefix, values


# --------------------------------------------------------------------------- naming
def skip_reason(name):
    for pattern, why in _COMPILED_SKIPS:
        if pattern.fullmatch(name):
            return why
    return None


def tf1_to_keras_name(name):
    """The Keras path a TF1 variable maps to, or None when no rule matches."""
    stripped = name
    for prefix in name_map.TF1_MODEL_PREFIXES:
        if stripped.startswith(prefix):
            stripped = stripped[len(prefix) :]
            break
    for pattern, template in _COMPILED_RENAMES + _COMPILED_FINETUNE:
        match = pattern.fullmatch(stripped)
        if match:
            return match.expand(template)
    return None


def model_variable_paths(model):
    """{path relative to the model: variable} for every weight of the model."""
    out = {}
    for v in model.weights:
        path = v.path
        head, _, rest = path.partition("/")
        out[rest if head == model.name else path] = v
    return out


# --------------------------------------------------------------------------- loading
def plan_assignments(model_paths, checkpoint, source, renamer=tf1_to_keras_name, allow_fresh=()):
    """Pairs checkpoint values with model paths under the strict rules. Raises CheckpointMismatchError."""
    assigned, skipped, not_used, unmatched, unexpected, mismatched = [], [], [], [], [], []
    taken = {}
    for name in sorted(checkpoint):
        why = skip_reason(name)
        if why is not None:
            skipped.append((name, why))
            continue
        target = renamer(name)
        if target is None:
            unmatched.append(name)
            continue
        if target not in model_paths:
            if _PRETRAIN_HEAD.fullmatch(target):
                not_used.append((name, "pretraining head"))
            elif FINETUNE_HEAD.fullmatch(target):
                not_used.append((name, "finetuning head"))
            else:
                unexpected.append(name)
            continue
        if target in taken:
            unexpected.append(f"{name} (maps to {target}, already given by {taken[target]})")
            continue
        taken[target] = name
        model_shape = tuple(model_paths[target])
        ckpt_shape = tuple(np.shape(checkpoint[name]))
        if model_shape != ckpt_shape:
            mismatched.append((name, ckpt_shape, model_shape))
            continue
        assigned.append(Assignment(name, target, ckpt_shape))
    mismatched_targets = {renamer(name) for name, _, _ in mismatched}
    missing = sorted(p for p in model_paths if p not in taken and p not in mismatched_targets)
    fresh = [p for p in missing if any(re.fullmatch(pattern, p) for pattern in allow_fresh)]
    missing = [p for p in missing if p not in fresh]
    if missing or unexpected or unmatched or mismatched:
        raise CheckpointMismatchError(source, missing, unexpected, unmatched, mismatched)
    return LoadReport(source, assigned, skipped, not_used, fresh)


def load_checkpoint_into_model(model, path, renamer=None, allow_fresh=(), log=True):
    """Loads a TF1 checkpoint, or a converted kaleido_tf checkpoint, into a built model. Returns a LoadReport.

    Args:
        model: a built Keras model (KaleidoBERTPretrainModel or a classifier).
        path: checkpoint prefix, file or directory.
        renamer: maps a checkpoint name to a model path; the TF1 name map by default.
        allow_fresh: regexes of model paths that may be absent from the checkpoint (a new task head).
    """
    prefix, checkpoint = read_checkpoint(path)
    renamer = renamer or tf1_to_keras_name
    paths = model_variable_paths(model)
    report = plan_assignments({p: v.shape for p, v in paths.items()}, checkpoint, prefix, renamer, allow_fresh)
    for a in report.assigned:
        paths[a.target].assign(checkpoint[a.source].astype(paths[a.target].dtype))
    if log:
        lines = report.summary_lines()
        for line in lines[:-1]:
            logger.debug(line)
        logger.info(lines[-1])
    return report


# --------------------------------------------------------------------------- converted directories
CONVERTED_MARKER = "kaleido_tf.json"
CONVERTED_PREFIX = "model.ckpt"
CONVERTED_FORMAT = "kaleido_tf-name-based-v1"


def identity_name(name):
    return name


def is_converted_directory(path):
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, CONVERTED_MARKER))


def write_name_based_checkpoint(prefix, arrays):
    """Writes {name: array} as a TF (V2 format) checkpoint keyed by those names."""
    names = sorted(arrays)
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(arrays[n]) for n in names],
    )
