"""TF1 checkpoint -> kaleido_tf directory: the strict reader of `convert` checked against a pretraining model.

`kaleido-convert` (kaleido_tf.apps.convert_main) runs it from the command line.
"""

import json
import os

import numpy as np

from kaleido_tf.convert import tf1_converter
from kaleido_tf.model_zoo.kaleidobert_config import KaleidoBERTConfig
from kaleido_tf.model_zoo.kaleidobert_pretrain_model import KaleidoBERTPretrainModel
from kaleido_tf.utils.io import atomic_directory, atomic_write_text


def convert_tf1_checkpoint(tf1_checkpoint, output_dir, config_path=None):
    """Converts a TF1 checkpoint to a kaleido_tf directory; returns the LoadReport.

    The directory holds `config.json`, a name-based TF checkpoint `model.ckpt` keyed by Keras paths (backbone,
    pretraining heads and any finetuning heads found), `kaleido_tf.json` and `conversion_summary.txt`. It is
    written under a temporary name and renamed into place: `output_dir` holds the old content or the complete
    new one, never a part.
    """
    prefix, checkpoint = tf1_converter.read_checkpoint(tf1_checkpoint)
    config_path = config_path or os.path.join(os.path.dirname(prefix), "config.json")
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"config.json not found beside the checkpoint: expected {config_path}")
    config = KaleidoBERTConfig.from_json_file(config_path)
    model = KaleidoBERTPretrainModel(config)
    model.build()
    shapes = {p: tuple(v.shape) for p, v in tf1_converter.model_variable_paths(model).items()}
    # Finetuning heads found in the checkpoint become part of the converted model: [H, C] and [C].
    heads = {}
    for name in checkpoint:
        target = tf1_converter.tf1_to_keras_name(name)
        if target is not None and tf1_converter.FINETUNE_HEAD.fullmatch(target) and target.endswith("/bias"):
            head = target[: -len("/bias")]
            classes = int(np.shape(checkpoint[name])[0])
            shapes[f"{head}/bias"] = (classes,)
            shapes[f"{head}/kernel"] = (config.hidden_size, classes)
            heads[head] = classes
    report = tf1_converter.plan_assignments(shapes, checkpoint, prefix)
    arrays = {a.target: checkpoint[a.source] for a in report.assigned}
    info = {
        "format": tf1_converter.CONVERTED_FORMAT,
        "source": os.path.basename(prefix),
        "variables": len(arrays),
        "finetune_heads": heads,
    }
    with atomic_directory(output_dir) as tmp:
        tf1_converter.write_name_based_checkpoint(os.path.join(tmp, tf1_converter.CONVERTED_PREFIX), arrays)
        config.to_json_file(os.path.join(tmp, "config.json"))
        atomic_write_text(os.path.join(tmp, tf1_converter.CONVERTED_MARKER), json.dumps(info, indent=2) + "\n")
        atomic_write_text(os.path.join(tmp, "conversion_summary.txt"), "\n".join(report.summary_lines()) + "\n")
    return report
