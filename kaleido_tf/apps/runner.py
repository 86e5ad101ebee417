"""What the pretraining and finetuning applications share: inputs, model initialisation, the training run."""

import glob
import json
import logging
import os
import sys

import keras
import tensorflow as tf

from kaleido_tf.apps.app_flags import UsageError, check_flag_ranges
from kaleido_tf.datasets import (
    SCHEMA_PRESETS,
    get_schema,
    known_field_lengths,
    make_bundle_dataset,
    make_tfrecord_dataset,
    read_list_file,
    read_schema_json,
)
from kaleido_tf.engines import Predictor, Trainer, get_strategy
from kaleido_tf.engines.preemption import PREEMPTED_EXIT_CODE, TrainingPreempted
from kaleido_tf.export.exporter import export_saved_model
from kaleido_tf.model_zoo import registry
from kaleido_tf.model_zoo.kaleidobert_config import KaleidoBERTConfig
from kaleido_tf.optimizers import compute_train_steps
from kaleido_tf.utils.app_logging import configure_app_logging, say
from kaleido_tf.utils.cli_errors import guard
from kaleido_tf.utils.io import atomic_write_text, read_json_file

logger = logging.getLogger("kaleido_tf")


# ---------------------------------------------------------------------------- inputs
def is_tfrecord_input(path):
    if os.path.isdir(path):
        return os.path.isfile(os.path.join(path, "schema.json"))
    return path.endswith((".tfrecord", ".tfrecord.gz")) or any(ch in path for ch in "*?[")


def check_schema_fits(config, schema, source, task_name=None):
    """Refuses, before any graph runs, input whose field lengths disagree with the model config (text_seq_len,
    patch_feature_size) or, for pretraining, that lacks the pretraining fields (shards of another task)."""
    expected = known_field_lengths(
        text_seq_len=config.text_seq_len,
        max_predictions_per_seq=None,
        patch_feature_size=config.patch_feature_size,
        masked_greymask_patch_num=config.masked_greymask_patch_num,
        masked_blankmask_patch_num=config.masked_blankmask_patch_num,
    )
    setting = dict.fromkeys(("input_ids", "input_mask", "segment_ids"), "text_seq_len")
    setting.update({name: "patch_feature_size" for name in expected if name.startswith("img_feature_convert_")})
    for spec in schema.fields:
        key = setting.get(spec.name)
        if key and expected.get(spec.name) is not None and spec.length != expected[spec.name]:
            raise UsageError(
                f"{source}: field {spec.name} has length {spec.length}, but the model config's "
                f"{key}={getattr(config, key)} needs {expected[spec.name]}; give a --model_config whose {key} "
                f"matches the input (or preprocess the input again with the config's)"
            )
    if task_name == "pretrain":
        missing = [name for name in SCHEMA_PRESETS["pretrain"].names if name not in schema]
        if missing:
            raise UsageError(
                f"{source} lacks the field(s) {', '.join(missing)} that pretraining needs: it is not pretraining "
                f"input (kaleido-preprocess writes that under OUTPUT_DIR/pretrain/; finetuning shards go to "
                f"finetune_main --task=catepred or subcatepred)"
            )


def input_schema(flag_value, config, path, required=True, task_name=None):
    """The schema for `path`: the flag (preset or string), else the TFRecord's schema.json; checked against
    the model config (and the task's fields, see `check_schema_fits`)."""
    schema = _input_schema(flag_value, config, path, required)
    if schema is not None:
        check_schema_fits(config, schema, f"--input_schema {flag_value}", task_name)
    elif path and is_tfrecord_input(path) and os.path.isdir(path):
        check_schema_fits(config, read_schema_json(path).schema, os.path.join(path, "schema.json"), task_name)
    return schema


def _input_schema(flag_value, config, path, required=True):
    if flag_value:
        expected = known_field_lengths(
            text_seq_len=None,
            patch_feature_size=config.patch_feature_size,
            masked_greymask_patch_num=config.masked_greymask_patch_num,
            masked_blankmask_patch_num=config.masked_blankmask_patch_num,
        )
        expected = {
            k: v
            for k, v in expected.items()
            if v is not None and not k.startswith("masked_lm") and k not in ("input_ids", "input_mask", "segment_ids")
        }
        return get_schema(flag_value, expected_lengths=expected)
    if path and is_tfrecord_input(path) and os.path.isdir(path):
        return None  # read from schema.json
    if required:
        raise UsageError("--input_schema is required for bundle (TSV) input")
    return None


def count_examples(path):
    """Examples in a bundle list or a TFRecord directory (for EasyTransfer's train-steps arithmetic)."""
    if is_tfrecord_input(path):
        if os.path.isdir(path):
            counts = read_schema_json(path).counts
            for key in ("num_examples", "examples", "lines_written"):
                if key in counts:
                    return int(counts[key])
        total = 0
        files = sorted(glob.glob(path)) if not os.path.isdir(path) else []
        for f in files:
            total += sum(1 for _ in tf.data.TFRecordDataset(f, compression_type="GZIP" if f.endswith(".gz") else ""))
        return total
    total = 0
    for data_file in read_list_file(path):
        with tf.io.gfile.GFile(data_file, "rb") as f:
            total += sum(1 for line in f if line.strip())
    return total


def dataset_fn(path, schema, batch_size, training, seed=0, num_epochs=None):
    """A function of a tf.distribute.InputContext giving per-replica batches of `batch_size`."""
    if not path:
        raise UsageError("an input file flag (--train_input_fp / --eval_input_fp / --predict_input_fp) is missing")

    def make(context):
        if is_tfrecord_input(path):
            return make_tfrecord_dataset(
                path, batch_size, training, schema=schema, num_epochs=num_epochs, input_context=context, seed=seed
            )
        return make_bundle_dataset(
            path, schema, batch_size, training, num_epochs=num_epochs, input_context=context, seed=seed
        )

    return make


# ---------------------------------------------------------------------------- model
def resolve_config(flags):
    """The model config: beside the weights to predict with (evaluate, predict, export), else beside
    --pretrain_model_name_or_path, else --model_config, else in --model_dir."""
    source = flags.pretrain_model_name_or_path
    if flags.mode in ("evaluate", "predict", "export"):
        config = registry.config_for(weights_for_prediction(flags))
    elif flags.model_dir and os.path.isfile(os.path.join(flags.model_dir, registry.TRAINER_MARKER)):
        config = registry.config_for(flags.model_dir)  # resuming: the run's own config
        if flags.model_config:
            check_same_config(flags.model_config, flags.model_dir, config)
    elif source and source != "random":
        config = registry.config_for(source)
    elif flags.model_config:
        config = config_following_the_input(flags.model_config, flags.train_input_fp)
    else:
        raise UsageError(
            "no model config: give --pretrain_model_name_or_path (a checkpoint with config.json beside "
            "it, a converted directory or a model-zoo name) or --model_config"
        )
    if flags.input_sequence_length and flags.input_sequence_length > config.max_position_embeddings:
        raise UsageError(
            f"--input_sequence_length={flags.input_sequence_length} exceeds the model's "
            f"max_position_embeddings={config.max_position_embeddings}"
        )
    if flags.vocab_size and flags.vocab_size != config.vocab_size and flags["vocab_size"].present:
        raise UsageError(f"--vocab_size={flags.vocab_size} but the model's vocab_size is {config.vocab_size}")
    return config


# config key -> (the field whose length gives it, patches in that field)
INPUT_DECIDES = {"text_seq_len": ("input_ids", 1), "patch_feature_size": ("img_feature_convert_rotation", 1)}


def config_following_the_input(model_config, input_path):
    """The config of `model_config` with `text_seq_len` and `patch_feature_size` taken from the shards'
    `schema.json` at `input_path` where the file does not set them (said once); a value the file sets that
    disagrees with the shards is a UsageError naming both values and both files."""
    config = KaleidoBERTConfig.from_json_file(model_config)
    if not (input_path and is_tfrecord_input(input_path) and os.path.isdir(input_path)):
        return config
    given = read_json_file(model_config, "config file")
    schema_path = os.path.join(input_path, "schema.json")
    schema = read_schema_json(input_path).schema
    taken = {}
    for key, (field, patches) in INPUT_DECIDES.items():
        if field not in schema:
            continue
        value = schema[field].length // patches
        if key not in given:
            taken[key] = value
        elif given[key] != value:
            raise UsageError(
                f"--model_config {model_config} sets {key}={given[key]}, but the shards' {schema_path} have "
                f"{key}={value} (field {field} of length {schema[field].length}): remove {key} from "
                f"{model_config} to take the shards' value, or preprocess the input again with {given[key]}"
            )
    if taken:
        config = config.replace(**taken)
        settings = " and ".join(f"{key}={value}" for key, value in taken.items())
        say(f"model config: {settings} from {schema_path} ({model_config} does not set them)")
    return config


def check_same_config(model_config, model_dir, resumed):
    """A --model_config given to a --model_dir that already holds a run must be that run's config."""
    given = KaleidoBERTConfig.from_json_file(model_config).to_dict()
    existing = resumed.to_dict()
    differing = sorted(k for k in set(given) | set(existing) if given.get(k) != existing.get(k))
    if not differing:
        return
    stored = os.path.join(model_dir, "config.json")
    detail = ", ".join(f"{k}: {given.get(k)!r} in the one, {existing.get(k)!r} in the other" for k in differing[:8])
    if len(differing) > 8:
        detail += f" (and {len(differing) - 8} more)"
    has_checkpoints = bool(tf.train.latest_checkpoint(model_dir))
    remedy = (
        "its checkpoints were trained with the stored one: train into another --model_dir"
        if has_checkpoints
        else f"no checkpoint was saved with it: delete {stored} to start afresh with --model_config, "
        f"or train into another --model_dir"
    )
    raise UsageError(f"--model_config {model_config} differs from {stored} of the run there ({detail}); {remedy}")


def init_fn(source):
    """Initialisation from `source` when there is no checkpoint to resume; returns the sentence saying which
    (the trainer logs it, once)."""

    def init(model):
        if source == "random":
            return "random initialisation (--pretrain_model_name_or_path=random)"
        if not source:
            return "random initialisation (no --pretrain_model_name_or_path given)"
        return registry.load_weights(model, source)

    return init


def apply_model_zoo_path(flags):
    if flags.modelZooBasePath:
        os.environ[registry.CHECKPOINTS_ENV] = flags.modelZooBasePath


def make_strategy(flags):
    return get_strategy(num_gpus=flags.workerGPU)


def train_steps_for(flags, per_replica_batch, num_replicas):
    if flags.train_steps is not None:  # 0 and negatives are refused with the other flags
        return flags.train_steps
    examples = count_examples(flags.train_input_fp)
    steps = compute_train_steps(examples, flags.num_epochs, per_replica_batch * num_replicas)
    say(
        f"{examples} training examples x {flags.num_epochs} epochs / global batch "
        f"{per_replica_batch * num_replicas} -> {steps} steps"
    )
    return steps


def run_train_and_evaluate(task, flags, evaluate=True):
    if not flags.model_dir:
        raise UsageError("--model_dir is required for training")
    keras.utils.set_random_seed(flags.seed)
    strategy = make_strategy(flags)
    schema = input_schema(flags.input_schema, task.config, flags.train_input_fp, task_name=task.name)
    steps = train_steps_for(flags, flags.train_batch_size, strategy.num_replicas_in_sync)
    trainer = Trainer(
        task,
        flags.model_dir,
        strategy,
        learning_rate=flags.learning_rate,
        train_steps=steps,
        warmup_ratio=flags.warmup_ratio,
        weight_decay=flags.weight_decay_ratio,
        save_steps=flags.save_steps,
        keep_checkpoint_max=flags.keep_checkpoint_max,
        log_steps=flags.log_steps,
        jit_compile=flags.jit_compile,
        progress=flags.progress,
        mixed_precision=flags.mixed_precision,
    )
    say(trainer.initialize(init_fn(flags.pretrain_model_name_or_path)))
    train_fn = dataset_fn(flags.train_input_fp, schema, flags.train_batch_size, True, seed=flags.seed)
    eval_fn = None
    if evaluate and flags.eval_input_fp:
        eval_schema = input_schema(flags.input_schema, task.config, flags.eval_input_fp, task_name=task.name)
        eval_fn = dataset_fn(flags.eval_input_fp, eval_schema, flags.eval_batch_size, False, num_epochs=1)
    logs = trainer.train(
        train_fn,
        flags.train_batch_size,
        eval_dataset_fn=eval_fn,
        eval_steps=flags.num_eval_steps,
        eval_every=flags.eval_every_steps,
    )
    say(
        f"finished at step {trainer.global_step}: "
        + ", ".join(f"{k}={v:.4f}" for k, v in logs.items() if isinstance(v, float))
    )
    return trainer, logs


def run_evaluate(task, flags):
    """--mode=evaluate: the task's metrics over --eval_input_fp with the weights to predict with."""
    trainer = Trainer(task, flags.model_dir or flags.output_dir, make_strategy(flags), progress=False)
    say(registry.load_weights(trainer.model, weights_for_prediction(flags)))
    schema = input_schema(flags.input_schema, task.config, flags.eval_input_fp)
    return trainer.evaluate(
        dataset_fn(flags.eval_input_fp, schema, flags.eval_batch_size, False, num_epochs=1), steps=flags.num_eval_steps
    )


def weights_for_prediction(flags):
    """--predict_checkpoint_path, else the latest checkpoint of --model_dir, else --pretrain_model_name_or_path."""
    for candidate in (flags.predict_checkpoint_path, flags.model_dir, flags.pretrain_model_name_or_path):
        if (
            candidate
            and candidate != "random"
            and (os.path.exists(candidate) or os.path.exists(candidate + ".index") or candidate in registry.MODEL_ZOO)
        ):
            return candidate
    raise UsageError(
        "nothing to predict with: give --predict_checkpoint_path, --model_dir or --pretrain_model_name_or_path"
    )


def predictor_for(task, flags, strategy=None):
    """A Predictor of `task` (under `strategy`, default the current one) loaded from the weights to predict with;
    says what it loaded."""
    predictor = Predictor(task, strategy).load(weights_for_prediction(flags))
    say(predictor.load_message)
    return predictor


def run_export(task, flags):
    """--mode=export: the trained (or given) model as a versioned SavedModel for TF Serving."""
    export_dir = flags.export_dir or (flags.output_dir and f"{flags.output_dir}/export")
    if not export_dir:
        raise UsageError("--export_dir (or --output_dir) is required for --mode=export")
    model = predictor_for(task, flags).model
    label_map = None
    if getattr(task, "class_names", None):
        label_map = {name: i for i, name in enumerate(task.class_names)}
    path = export_saved_model(model, export_dir, vocab_file=flags.vocab_file, label_map=label_map)
    say(f"exported {path}")
    return path


MODES = ("train_and_evaluate", "train", "evaluate", "predict", "export")


def run_mode(task, flags, evaluation_report, predict):
    """Runs `flags.mode` for an application: training (printing the final evaluation's report when it has one),
    evaluation (printing `evaluation_report(metrics)`), `predict(task)`, or export."""
    mode = flags.mode
    if mode in ("train_and_evaluate", "train"):
        _, logs = run_train_and_evaluate(task, flags, evaluate=mode == "train_and_evaluate")
        if "eval/report_text" in logs:  # the per-class report (or caption scores) of the final evaluation
            print(logs["eval/report_text"], flush=True)
    elif mode == "evaluate":
        print(evaluation_report(run_evaluate(task, flags)), flush=True)
    elif mode == "predict":
        predict(task)
    elif mode == "export":
        run_export(task, flags)
    else:
        raise UsageError(f"--mode must be {', '.join(MODES[:-1])} or {MODES[-1]}, got {mode!r}")
    return 0


def main_wrapper(main):
    """Runs `main(argv)` after checking the flags' ranges: a failure is one line naming its cause and exit
    code 2 (`kaleido_tf.utils.cli_errors`); a SIGTERM during training, a checkpoint and exit code 143."""

    def wrapped(argv):
        configure_app_logging()  # each sentence once, `[kaleido_tf] ...` (not again through absl's handler)
        try:
            check_flag_ranges()  # before any work
            return main(argv)
        except TrainingPreempted as e:  # SIGTERM: checkpoint saved at a step boundary; the rerun resumes
            print(f"[kaleido_tf] {e}", file=sys.stderr, flush=True)
            return PREEMPTED_EXIT_CODE

    return guard("", wrapped)


def write_json(path, data):
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=float) + "\n")
