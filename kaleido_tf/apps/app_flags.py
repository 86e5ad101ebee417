"""The command-line flags of the original pretraining and finetuning scripts, with the same names and meanings.

EasyTransfer's own flags (`--workerGPU`, `--workerCount`, `--worker_hosts`, `--task_index`, `--job_name`, ...) are
accepted too. Flags the port adds are marked "(kaleido_tf)".
"""

import sys

from absl import flags


class UsageError(ValueError):
    """A flag is missing or inconsistent; the message says which."""


FLAGS = flags.FLAGS


def list_in_help(*modules):
    """Makes `--help` list the flags defined in `modules` (names, `__main__` included).

    absl's `--help` shows only the key flags of the main module, which it takes to be `sys.argv[0]`: the
    script, the file run by `python -m` or the console script, never the module that defined the flags. Without
    this, `--help` listed no flag at all and sent the user to `--helpfull` (absl's own flags included).
    """
    for module in modules:
        for flag in FLAGS.get_flags_for_module(module):
            FLAGS.register_key_flag_for_module(sys.argv[0], flag)


def define_flags():
    if "mode" in FLAGS:  # already defined in this process
        return
    # EasyTransfer framework flags.
    flags.DEFINE_string("mode", None, "train_and_evaluate, train, evaluate, predict or export")
    flags.DEFINE_integer("workerGPU", 1, "GPUs per worker (MirroredStrategy over at most this many)")
    flags.DEFINE_integer("workerCount", 1, "workers; use TF_CONFIG for several (MultiWorkerMirroredStrategy)")
    flags.DEFINE_integer("workerCPU", 1, "accepted for compatibility")
    flags.DEFINE_string("worker_hosts", "localhost:5001", "accepted for compatibility; several workers use TF_CONFIG")
    flags.DEFINE_integer("task_index", 0, "accepted for compatibility; several workers use TF_CONFIG")
    flags.DEFINE_string("job_name", "worker", "accepted for compatibility")
    flags.DEFINE_string("modelZooBasePath", None, "where model-zoo names are looked up (default ./checkpoints)")
    # The applications' flags.
    flags.DEFINE_string("type", None, "retrieval direction in predict mode: img2txt or txt2img")
    flags.DEFINE_string("task", None, "finetuning task: catepred, subcatepred or caption")
    flags.DEFINE_integer("input_sequence_length", None, "text length of the inputs")
    flags.DEFINE_integer("vocab_size", 30522, "vocabulary size (checked against the model's)")
    flags.DEFINE_integer("image_feature_size", None, "total patch feature values per example (55 x 2048 = 112640)")
    flags.DEFINE_string("input_schema", None, "name:type:length,... or a preset: pretrain, finetune, retrieval")
    flags.DEFINE_string(
        "pretrain_model_name_or_path",
        None,
        "TF1 checkpoint (converted on the fly), converted directory, training model_dir, or a "
        "model-zoo name under ./checkpoints; 'random' for a random initialisation from --model_config",
    )
    flags.DEFINE_string("train_input_fp", None, "bundle list file, or a TFRecord shard directory / glob")
    flags.DEFINE_string("eval_input_fp", None, "bundle list file, or a TFRecord shard directory / glob")
    flags.DEFINE_string("predict_input_fp", None, "bundle list file, or a TFRecord shard directory / glob")
    flags.DEFINE_string("predict_checkpoint_path", None, "weights to predict with (default: latest in --model_dir)")
    flags.DEFINE_integer("train_batch_size", 128, "examples per replica per step")
    flags.DEFINE_integer("predict_batch_size", 128, "examples per prediction batch")
    flags.DEFINE_integer("eval_batch_size", 16, "examples per evaluation batch")
    flags.DEFINE_integer("num_epochs", 1, "passes over the training data")
    flags.DEFINE_string("model_dir", "", "checkpoints, TensorBoard logs and evaluation results")
    flags.DEFINE_float("learning_rate", 1e-4, "base learning rate")
    flags.DEFINE_string("output_dir", None, "prediction and retrieval result files")
    # kaleido_tf additions.
    flags.DEFINE_string("model_config", None, "(kaleido_tf) config.json for a random initialisation")
    flags.DEFINE_float("weight_decay_ratio", 0.0, "(kaleido_tf) > 0 selects the AdamW variant")
    flags.DEFINE_float("warmup_ratio", 0.1, "(kaleido_tf) share of the steps spent warming up")
    flags.DEFINE_integer("save_steps", None, "(kaleido_tf) checkpoint every N steps")
    flags.DEFINE_integer("keep_checkpoint_max", 5, "(kaleido_tf) checkpoints kept")
    flags.DEFINE_integer("num_eval_steps", None, "(kaleido_tf) at most this many evaluation batches")
    flags.DEFINE_integer("eval_every_steps", None, "(kaleido_tf) evaluate every N steps during training")
    flags.DEFINE_integer("log_steps", 50, "(kaleido_tf) TensorBoard interval")
    flags.DEFINE_integer("train_steps", None, "(kaleido_tf) override the steps computed from the data and epochs")
    flags.DEFINE_integer("num_classes", None, "(kaleido_tf) classes of the finetuning head (default 48 / 122)")
    flags.DEFINE_string("label_map", None, "(kaleido_tf) JSON name -> id: class names and count")
    flags.DEFINE_boolean("jit_compile", False, "(kaleido_tf) XLA-compile the training step")
    flags.DEFINE_enum(
        "mixed_precision",
        None,
        ["mixed_float16", "mixed_bfloat16"],
        "(kaleido_tf) train under this Keras mixed-precision policy (float32 variables and losses): "
        "mixed_bfloat16 on GPUs/TPUs and CPUs with bfloat16 units, mixed_float16 on GPUs (dynamic "
        "loss scaling); unset: float32",
    )
    flags.DEFINE_integer("seed", 0, "(kaleido_tf) seed of initialisation, shuffling and dropout")
    flags.DEFINE_boolean("use_image_mask", False, "(kaleido_tf) attend only to patches whose image_mask is 1")
    flags.DEFINE_boolean("grey_target_per_patch", False, "(kaleido_tf) corrected grey-mask target softmax")
    flags.DEFINE_string("export_dir", None, "(kaleido_tf) SavedModel directory for --mode=export")
    flags.DEFINE_string(
        "vocab_file",
        None,
        "(kaleido_tf) the model's vocab.txt: packed into the export for raw-text "
        "scoring and captions; special token ids and decoding of --task=caption (default: the "
        "packaged BERT uncased vocab)",
    )
    flags.DEFINE_integer("beam_size", 1, "(kaleido_tf) --task=caption: beams of caption generation (1: greedy)")
    flags.DEFINE_integer(
        "max_caption_length",
        None,
        "(kaleido_tf) --task=caption: generated tokens at most, [SEP] included (default: the text length - 1)",
    )
    flags.DEFINE_float(
        "caption_length_penalty",
        0.0,
        "(kaleido_tf) --task=caption: GNMT length-penalty exponent ranking the beams (0: none)",
    )
    flags.DEFINE_integer(
        "no_repeat_ngram_size",
        0,
        "(kaleido_tf) --task=caption: never generate an n-gram of this size twice in a caption (0: off)",
    )
    flags.DEFINE_float(
        "caption_mask_ratio",
        0.3,
        "(kaleido_tf) --task=caption: share of caption tokens masked and predicted per training example",
    )
    flags.DEFINE_integer(
        "caption_max_predictions",
        None,
        "(kaleido_tf) --task=caption: masked tokens per caption at most (default: ceil(ratio * (text length - 1)))",
    )
    flags.DEFINE_boolean("progress", True, "(kaleido_tf) progress bars with rate and ETA; --noprogress: none")


# flag -> (lowest allowed value, whether the lowest is allowed, what the value means); None is always allowed.
FLAG_RANGES = {
    "learning_rate": (0.0, False, "a positive learning rate (0 trains nothing, a negative one climbs the loss)"),
    "train_steps": (1, True, "at least 1 step (leave it unset to compute the steps from the data and epochs)"),
    "num_epochs": (1, True, "at least 1 pass over the training data"),
    "train_batch_size": (1, True, "at least 1 example per batch"),
    "eval_batch_size": (1, True, "at least 1 example per batch"),
    "predict_batch_size": (1, True, "at least 1 example per batch"),
    "warmup_ratio": (0.0, True, "a share of the steps between 0 and 1"),
    "weight_decay_ratio": (0.0, True, "0 (Adam) or a positive decay (AdamW)"),
    "save_steps": (1, True, "at least 1 step between checkpoints (unset: at the end)"),
    "keep_checkpoint_max": (1, True, "at least 1 checkpoint kept"),
    "num_eval_steps": (1, True, "at least 1 evaluation batch (unset: the whole input)"),
    "eval_every_steps": (1, True, "at least 1 step between evaluations (unset: at the end only)"),
    "log_steps": (1, True, "at least 1 step between logs"),
    "input_sequence_length": (1, True, "at least 1 token"),
    "image_feature_size": (1, True, "at least 1 value"),
    "num_classes": (1, True, "at least 1 class"),
    "workerGPU": (0, True, "0 or more GPUs"),
    "workerCount": (1, True, "at least 1 worker"),
    "beam_size": (1, True, "at least 1 beam"),
    "max_caption_length": (1, True, "at least 1 token"),
    "no_repeat_ngram_size": (0, True, "0 (off) or an n-gram size"),
    "caption_mask_ratio": (0.0, False, "a share of the caption tokens above 0 and at most 1"),
    "caption_max_predictions": (1, True, "at least 1 masked token"),
}
FLAG_MAXIMA = {"warmup_ratio": 1.0, "caption_mask_ratio": 1.0}


def flag_range_errors(values):
    """The one-line complaints about out-of-range values in `values` ({flag: value}), in flag order."""
    errors = []
    for name, (lowest, inclusive, meaning) in FLAG_RANGES.items():
        value = values.get(name)
        if value is None:
            continue
        too_low = value < lowest if inclusive else value <= lowest
        too_high = name in FLAG_MAXIMA and value > FLAG_MAXIMA[name]
        if too_low or too_high:
            errors.append(f"--{name}={value} is out of range: give {meaning}")
    return errors


def check_flag_ranges(flag_values=FLAGS):
    """Raises a UsageError naming every out-of-range flag; run before any work."""
    errors = flag_range_errors({name: flag_values[name].value for name in FLAG_RANGES if name in flag_values})
    if errors:
        raise UsageError("; ".join(errors))
