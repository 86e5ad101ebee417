"""Resolves a model name, a TF1 checkpoint or a converted directory to a loaded Keras model."""

import json
import logging
import os

import tensorflow as tf

from kaleido_tf.convert import tf1_converter
from kaleido_tf.model_zoo.kaleidobert_captioner import TASK as CAPTION_TASK
from kaleido_tf.model_zoo.kaleidobert_captioner import KaleidoBERTCaptioner
from kaleido_tf.model_zoo.kaleidobert_classifier import TASKS, KaleidoBERTClassifier
from kaleido_tf.model_zoo.kaleidobert_config import KaleidoBERTConfig
from kaleido_tf.model_zoo.kaleidobert_pretrain_model import KaleidoBERTPretrainModel
from kaleido_tf.model_zoo.kaleidobert_retrieval_model import FRESH_HEADS as RETRIEVAL_FRESH_HEADS
from kaleido_tf.model_zoo.kaleidobert_retrieval_model import KaleidoBERTRetrievalModel
from kaleido_tf.utils.model_dir import TRAINER_MARKER

logger = logging.getLogger(__name__)

# Model-zoo names, looked up as directories under the checkpoints folder (a converted directory, or a
# TF1 checkpoint with its config.json).
MODEL_ZOO = {"pai-kaleidobert-base-en": "pai-kaleidobert-base-en"}
CHECKPOINTS_ENV = "KALEIDO_TF_CHECKPOINTS"


def checkpoints_root():
    """$KALEIDO_TF_CHECKPOINTS, else ./checkpoints of the current directory."""
    return os.environ.get(CHECKPOINTS_ENV) or os.path.join(os.getcwd(), "checkpoints")


def _trainer_dir(path):
    directory = path if os.path.isdir(path) else os.path.dirname(path)
    return directory if os.path.isfile(os.path.join(directory, TRAINER_MARKER)) else None


def resolve_model_path(name_or_path):
    """-> (kind, path) with kind "converted", "trainer" (a training model_dir or one of its checkpoints) or "tf1"."""
    path = os.fspath(name_or_path)
    if path in MODEL_ZOO and not os.path.exists(path):
        candidate = os.path.join(checkpoints_root(), MODEL_ZOO[path])
        if not os.path.exists(candidate):
            raise FileNotFoundError(
                f"model-zoo name {path!r} is looked up in {candidate}, which does not exist; fetch and convert it "
                f"with scripts/checkpoint/get_checkpoint.sh, or set ${CHECKPOINTS_ENV}"
            )
        path = candidate
    if tf1_converter.is_converted_directory(path):
        return "converted", path
    if _trainer_dir(path):
        return "trainer", path
    if (
        not os.path.exists(path)
        and not os.path.exists(path + ".index")
        and not os.path.isdir(os.path.dirname(path) or ".")
    ):
        raise FileNotFoundError(
            f"no model at {path}: not a model-zoo name ({', '.join(MODEL_ZOO)}), directory or checkpoint"
        )
    return "tf1", path


def _config_beside(path, prefix):
    directory = path if os.path.isdir(path) else os.path.dirname(prefix)
    config_path = os.path.join(directory, "config.json")
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"config.json not found beside the checkpoint: expected {config_path}")
    return KaleidoBERTConfig.from_json_file(config_path)


def build_model(config, task="pretrain", num_classes=None, **model_kwargs):
    """An unloaded, built model for `task` ("pretrain", "catepred", "subcatepred" or "caption")."""
    if task == "pretrain":
        model = KaleidoBERTPretrainModel(config, **model_kwargs)
    elif task in TASKS:
        model = KaleidoBERTClassifier(config, task=task, num_classes=num_classes, **model_kwargs)
    elif task == CAPTION_TASK:
        # Backbone + the pretraining MLM head: every variable comes from a pretraining checkpoint.
        model = KaleidoBERTCaptioner(config, **model_kwargs)
    elif task == "retrieval":
        # Backbone + ITM head from a pretraining checkpoint; the ITC head starts fresh unless the source has it.
        model = KaleidoBERTRetrievalModel(config, **model_kwargs)
    else:
        raise ValueError(
            f"task must be 'pretrain', 'retrieval', {CAPTION_TASK!r} or one of {sorted(TASKS)}, got {task!r}"
        )
    model.build()
    return model


def from_pretrained(name_or_path, task="pretrain", num_classes=None, config=None, **model_kwargs):
    """Builds the model for `task` and loads its weights, strictly.

    Args:
        name_or_path: a TF1 checkpoint (prefix, `.index` file, or directory with a `checkpoint` file), a
            directory written by `kaleido-convert`, or a model-zoo name found under the checkpoints folder.
        task: "pretrain" (backbone + 7 heads), "catepred" or "subcatepred" (backbone + a class head; a head
            absent from the checkpoint is initialised freshly, and the load report says so), or "caption"
            (backbone + the MLM head, all from the checkpoint; the other pretraining heads are not used). A
            training model_dir of kaleido_tf's Trainer works too.
        num_classes: classes of a finetuning head (the checkpoint's head size wins when it has one).
        config: a KaleidoBERTConfig overriding config.json beside the checkpoint.
        model_kwargs: use_image_mask, fused_qkv, dtype... (for "caption" also the special token ids,
            max_caption_length, beam_size, length_penalty: see KaleidoBERTCaptioner)
    Returns the model; `model.load_report` lists every variable loaded, skipped or initialised.
    """
    kind, path = resolve_model_path(name_or_path)
    if config is None:
        config = config_for(name_or_path)
    if num_classes is None:
        num_classes = checkpoint_head_classes(name_or_path, task)
    model = build_model(config, task=task, num_classes=num_classes, **model_kwargs)
    load_weights(model, name_or_path)
    return model


def checkpoint_head_classes(name_or_path, task):
    """Classes of the `task` head (catepred, subcatepred) a TF1 checkpoint or converted directory holds; None
    when it holds none, for other tasks and for training model_dirs."""
    kind, path = resolve_model_path(name_or_path)
    if task not in TASKS or kind == "trainer":
        return None
    prefix, renamer = _prefix_and_renamer(kind, path)
    return _head_classes_in_checkpoint(prefix, renamer, TASKS[task][0])


def _prefix_and_renamer(kind, path):
    if kind == "converted":
        return os.path.join(path, tf1_converter.CONVERTED_PREFIX), tf1_converter.identity_name
    return tf1_converter.resolve_checkpoint_prefix(path), tf1_converter.tf1_to_keras_name


def config_for(name_or_path):
    """The KaleidoBERTConfig stored beside a checkpoint, converted directory or training model_dir."""
    kind, path = resolve_model_path(name_or_path)
    if kind == "trainer":
        return KaleidoBERTConfig.from_json_file(os.path.join(_trainer_dir(path), "config.json"))
    prefix, _ = _prefix_and_renamer(kind, path)
    return _config_beside(path, prefix)


def load_weights(model, name_or_path):
    """Loads weights into a built model, strictly; returns a sentence saying what was loaded.

    A classifier takes the backbone (and its head if the source has it; otherwise the head starts fresh,
    and the message and `model.load_report` say so); a pretraining model needs every one of its variables.
    """
    kind, path = resolve_model_path(name_or_path)
    head = getattr(model, "task", None)
    if kind == "trainer":
        return _load_trainer_checkpoint(model, path)
    prefix, renamer = _prefix_and_renamer(kind, path)
    allow_fresh = (rf"{TASKS[head][0]}/.+",) if head in TASKS else ()
    if head == "retrieval" or getattr(model, "itc_head", None) is not None:
        allow_fresh += tuple(rf"{name}/.+" for name in RETRIEVAL_FRESH_HEADS)
    report = tf1_converter.load_checkpoint_into_model(model, prefix, renamer=renamer, allow_fresh=allow_fresh)
    model.load_report = report
    message = f"loaded {len(report.assigned)} variables from {prefix}"
    if report.initialised:
        message += f"; freshly initialised (not in the checkpoint): {', '.join(report.initialised)}"
        logger.warning(message)
    return message


def _load_trainer_checkpoint(model, path):
    """Restores from a kaleido_tf training model_dir (object-based checkpoints of the Trainer)."""
    directory = _trainer_dir(path)
    with open(os.path.join(directory, TRAINER_MARKER), encoding="utf-8") as f:
        source_task = json.load(f).get("task")
    prefix = path if not os.path.isdir(path) else tf.train.latest_checkpoint(directory)
    if prefix is None:
        raise FileNotFoundError(f"no checkpoint in training directory {directory}")
    target_task = getattr(model, "task", "pretrain")
    if source_task == target_task:
        root = tf.train.Checkpoint(model=model)
        fresh = []
    elif target_task in TASKS:
        root = tf.train.Checkpoint(model=tf.train.Checkpoint(backbone=model.backbone))
        fresh = [v.path for v in model.head.weights]
    elif target_task == "retrieval" and source_task == "pretrain":
        root = tf.train.Checkpoint(model=tf.train.Checkpoint(backbone=model.backbone, itm_head=model.itm_head))
        fresh = [v.path for v in model.itc_head.weights]
    elif target_task == CAPTION_TASK and source_task == "pretrain":
        root = tf.train.Checkpoint(model=tf.train.Checkpoint(backbone=model.backbone, mlm_head=model.mlm_head))
        fresh = []
    else:
        raise tf1_converter.CheckpointError(
            f"{prefix} holds a {source_task} model; a {target_task} model cannot be loaded from it"
        )
    try:
        root.read(prefix).assert_existing_objects_matched().expect_partial()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        raise tf1_converter.CheckpointError(f"checkpoint {prefix} does not fit the model: {e}") from None
    model.load_report = None
    message = f"loaded the {source_task} weights of {prefix}"
    if fresh:
        message += f"; freshly initialised: {', '.join(fresh)}"
        logger.warning(message)
    return message


def _head_classes_in_checkpoint(prefix, renamer, head_name):
    try:
        shapes = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
    except Exception:  # the strict loader reports unreadable checkpoints with their path
        return None
    for name, shape in shapes.items():
        if renamer(name) == f"{head_name}/bias":
            return int(shape[0])
    return None


def read_converted_info(path):
    with open(os.path.join(path, tf1_converter.CONVERTED_MARKER), encoding="utf-8") as f:
        return json.load(f)
