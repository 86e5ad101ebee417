"""Kaleido-BERT pretraining and image-text retrieval, with the flags of the original pretrain_main.py.

    python -m kaleido_tf.apps.pretrain_main --mode=train_and_evaluate --train_input_fp=... --eval_input_fp=... \\
        --input_schema=pretrain --pretrain_model_name_or_path=pai-kaleidobert-base-en --train_batch_size=64 \\
        --num_epochs=25 --model_dir=checkpoints/pretrained --learning_rate=1e-4
    python -m kaleido_tf.apps.pretrain_main --mode=predict --type=img2txt --predict_input_fp=... \\
        --input_schema=retrieval --predict_checkpoint_path=... --output_dir=...

Modes: train_and_evaluate, train, evaluate, predict (retrieval: writes the original result file and prints
Accuracy, Rank@1/5/10/100 and AUC), export (SavedModel for TF Serving).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


from kaleido_tf.apps import app_flags
from kaleido_tf.apps.absl_entry import run_absl_tool

app_flags.define_flags()
FLAGS = app_flags.FLAGS


def build_task():
    # local import: TensorFlow loads after the flags are parsed (--help stays fast)
    from kaleido_tf.apps.runner import resolve_config  # noqa: PLC0415
    from kaleido_tf.tasks import PretrainTask  # noqa: PLC0415

    return PretrainTask(
        resolve_config(FLAGS), grey_target_per_patch=FLAGS.grey_target_per_patch, use_image_mask=FLAGS.use_image_mask
    )


def run_retrieval(task):
    # local import: TensorFlow loads after the flags are parsed (--help stays fast)
    from kaleido_tf.apps import runner  # noqa: PLC0415
    from kaleido_tf.evaluators.retrieval import format_retrieval_report  # noqa: PLC0415
    from kaleido_tf.evaluators.retrieval_predict import check_retrieval_input, predict_retrieval  # noqa: PLC0415

    kind = FLAGS.type or "txt2img"
    if kind not in ("img2txt", "txt2img"):
        raise runner.UsageError(f"--type must be img2txt or txt2img, got {kind!r}")
    if not FLAGS.output_dir:
        raise runner.UsageError("--output_dir is required in predict mode")
    check_retrieval_input(FLAGS.predict_input_fp, kind)
    predictor = runner.predictor_for(task, FLAGS, runner.make_strategy(FLAGS))
    schema = runner.input_schema(FLAGS.input_schema, task.config, FLAGS.predict_input_fp)
    batches = runner.dataset_fn(FLAGS.predict_input_fp, schema, FLAGS.predict_batch_size, False, num_epochs=1)
    path = os.path.join(FLAGS.output_dir, f"eval_{kind}_results.txt")
    metrics = predict_retrieval(predictor, batches, kind, path, progress=FLAGS.progress)
    runner.say(f"result file: {path}")
    print(format_retrieval_report(metrics), flush=True)
    runner.write_json(os.path.join(FLAGS.output_dir, f"eval_{kind}_metrics.json"), metrics)
    return metrics


def main(argv):
    del argv
    # local import: TensorFlow loads after the flags are parsed (--help stays fast)
    from kaleido_tf.apps import runner  # noqa: PLC0415

    runner.apply_model_zoo_path(FLAGS)
    task = build_task()
    return runner.run_mode(task, FLAGS, evaluation_report, run_retrieval)


def evaluation_report(metrics):
    return "\n".join(f"{k}: {v:.4f}" for k, v in metrics.items() if isinstance(v, float))


def run():
    run_absl_tool(main)


if __name__ == "__main__":
    run()
