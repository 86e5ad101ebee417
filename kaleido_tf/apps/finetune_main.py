"""Category / subcategory finetuning, with the flags of the original finetune_main.py, and captioning.

    python -m kaleido_tf.apps.finetune_main --mode=train_and_evaluate --task=catepred \\
        --train_input_fp=... --eval_input_fp=... --input_schema=finetune \\
        --pretrain_model_name_or_path=checkpoints/pretrained/kaleidobert.ckpt-50683 \\
        --train_batch_size=64 --num_epochs=20 --learning_rate=2e-5 --model_dir=checkpoints/classification/catepred

Modes: train_and_evaluate, train, evaluate (accuracy, macro-F1, per-class report), predict (one line per
example: ids, label, predicted class and its probability), export.

--task=caption finetunes captioning on the same finetune schema (the caption is the text): evaluation
generates captions and scores BLEU-4, METEOR, ROUGE-L and CIDEr; predict writes OUTPUT_DIR/captions.tsv (see
kaleido_tf/apps/caption_app.py); export adds the `caption` signature. Flags: --vocab_file, --beam_size,
--max_caption_length, --caption_length_penalty, --caption_mask_ratio, --caption_max_predictions.

--task=retrieval finetunes the ITC head and the ITM head on hard negatives (docs/retrieval.md) on the same
finetune schema, every example a matching (text, image) pair; evaluation reports the losses and in-batch ITC
Recall@1 in both directions.
"""

import os

import numpy as np
from tqdm.auto import tqdm

from kaleido_tf.utils.io import atomic_write

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


from kaleido_tf.apps import app_flags
from kaleido_tf.apps.absl_entry import run_absl_tool
from kaleido_tf.utils import label_map

app_flags.define_flags()
FLAGS = app_flags.FLAGS

PREDICT_PASSTHROUGH = ("text_prod_id", "image_prod_id", "prod_img_id", "img_category_id", "img_subcategory_id")


def read_label_map(path):
    """JSON name -> id (read by `utils.label_map.read_label_map`); returns (names by id, count)."""
    mapping = label_map.read_label_map(path)
    if not mapping:
        raise ValueError(f"{path}: the label map names no class")
    names = label_map.names_by_id(mapping, source=path)
    return names, len(names)


def build_task():
    # local import: TensorFlow loads after the flags are parsed (--help stays fast)
    from kaleido_tf.apps.runner import UsageError, resolve_config  # noqa: PLC0415
    from kaleido_tf.tasks import ClassificationTask  # noqa: PLC0415
    from kaleido_tf.tasks.retrieval_task import RetrievalTask  # noqa: PLC0415

    if FLAGS.task == "caption":
        # local import: TensorFlow loads after the flags are parsed (--help stays fast)
        from kaleido_tf.apps.caption_app import build_caption_task  # noqa: PLC0415

        return build_caption_task(FLAGS)
    if FLAGS.task == "retrieval":  # ITC + ITM on hard negatives (docs/retrieval.md)
        return RetrievalTask(resolve_config(FLAGS), use_image_mask=FLAGS.use_image_mask)
    if FLAGS.task not in ("catepred", "subcatepred"):
        raise UsageError(f"--task must be catepred, subcatepred, caption or retrieval, got {FLAGS.task!r}")
    names, count = (None, None)
    if FLAGS.label_map:
        names, count = read_label_map(FLAGS.label_map)
    num_classes = FLAGS.num_classes or count
    if names is not None and num_classes != len(names):
        names = None if num_classes < len(names) else names + [f"class_{i}" for i in range(len(names), num_classes)]
    return ClassificationTask(
        resolve_config(FLAGS),
        task=FLAGS.task,
        num_classes=num_classes,
        class_names=names,
        use_image_mask=FLAGS.use_image_mask,
    )


def run_predict(task):
    # local import: TensorFlow loads after the flags are parsed (--help stays fast)
    from kaleido_tf.apps import runner  # noqa: PLC0415

    if not FLAGS.output_dir:
        raise runner.UsageError("--output_dir is required in predict mode")
    predictor = runner.predictor_for(task, FLAGS, runner.make_strategy(FLAGS))
    schema = runner.input_schema(FLAGS.input_schema, task.config, FLAGS.predict_input_fp)
    batches = runner.dataset_fn(FLAGS.predict_input_fp, schema, FLAGS.predict_batch_size, False, num_epochs=1)
    path = os.path.join(FLAGS.output_dir, f"{task.name}_predictions.tsv")
    count = 0
    with atomic_write(path) as f:
        f.write("text_prod_id\timage_prod_id\tprod_img_id\tlabel\tprediction\tprobability\n")
        for out in tqdm(
            predictor.predict(batches, passthrough=PREDICT_PASSTHROUGH),
            unit="batch",
            disable=not FLAGS.progress,
            desc=f"predict {task.name}",
        ):
            logits = out["logits"]
            probs = np.exp(logits - logits.max(-1, keepdims=True))
            probs /= probs.sum(-1, keepdims=True)
            labels = out.get(task.label_feature, np.full((len(logits), 1), -1)).reshape(-1)
            for i in range(len(logits)):
                ids = [out[k][i].reshape(-1)[0] if k in out else b"" for k in PREDICT_PASSTHROUGH[:3]]
                ids = [x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in ids]
                pred = int(out["predictions"][i])
                f.write(f"{ids[0]}\t{ids[1]}\t{ids[2]}\t{int(labels[i])}\t{pred}\t{probs[i, pred]:.6f}\n")
                count += 1
    runner.say(f"wrote {count} predictions to {path}")


def main(argv):
    del argv
    # local import: TensorFlow loads after the flags are parsed (--help stays fast)
    from kaleido_tf.apps import runner  # noqa: PLC0415

    runner.apply_model_zoo_path(FLAGS)
    task = build_task()
    return runner.run_mode(task, FLAGS, evaluation_report, predict)


def evaluation_report(metrics):
    if "itc_loss" in metrics:  # retrieval
        return "\n".join(f"{name}: {value:.4f}" for name, value in sorted(metrics.items()))
    if "accuracy" not in metrics:  # captioning
        return f"loss: {metrics['loss']:.4f}\n{metrics.get('report_text', '')}"
    return f"accuracy: {metrics['accuracy']:.4f}\nmacro_f1: {metrics['macro_f1']:.4f}\n{metrics['report_text']}"


def predict(task):
    if task.name == "caption":
        # local import: TensorFlow loads after the flags are parsed (--help stays fast)
        from kaleido_tf.apps.caption_app import run_caption_predict  # noqa: PLC0415

        run_caption_predict(task, FLAGS)
    elif task.name == "retrieval":
        # local import: TensorFlow loads after the flags are parsed (--help stays fast)
        from kaleido_tf.apps.runner import UsageError  # noqa: PLC0415

        raise UsageError("--task=retrieval has no predict mode: embed a catalog with `kaleido-index build`")
    else:
        run_predict(task)


def run():
    run_absl_tool(main)


if __name__ == "__main__":
    run()
