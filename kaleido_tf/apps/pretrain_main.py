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

from absl import app

from kaleido_tf.apps import app_flags

app_flags.define_flags()
FLAGS = app_flags.FLAGS


def build_task():
    from kaleido_tf.apps.runner import resolve_config
    from kaleido_tf.tasks import PretrainTask

    return PretrainTask(
        resolve_config(FLAGS), grey_target_per_patch=FLAGS.grey_target_per_patch, use_image_mask=FLAGS.use_image_mask
    )


def run_retrieval(task):
    from kaleido_tf.apps import runner
    from kaleido_tf.engines import Trainer
    from kaleido_tf.evaluators.retrieval import format_retrieval_report
    from kaleido_tf.evaluators.retrieval_predict import predict_retrieval

    kind = FLAGS.type or "txt2img"
    if kind not in ("img2txt", "txt2img"):
        raise runner.UsageError(f"--type must be img2txt or txt2img, got {kind!r}")
    if not FLAGS.output_dir:
        raise runner.UsageError("--output_dir is required in predict mode")
    source = runner.weights_for_prediction(FLAGS)
    trainer = Trainer(task, FLAGS.output_dir, runner.make_strategy(FLAGS), progress=False)
    runner.say(runner.registry.load_weights(trainer.model, source))
    schema = runner.input_schema(FLAGS.input_schema, task.config, FLAGS.predict_input_fp)
    batches = runner.dataset_fn(FLAGS.predict_input_fp, schema, FLAGS.predict_batch_size, False, num_epochs=1)
    path = os.path.join(FLAGS.output_dir, f"eval_{kind}_results.txt")
    metrics = predict_retrieval(trainer, batches, kind, path, progress=FLAGS.progress)
    runner.say(f"result file: {path}")
    print(format_retrieval_report(metrics), flush=True)
    runner.write_json(os.path.join(FLAGS.output_dir, f"eval_{kind}_metrics.json"), metrics)
    return metrics


def main(argv):
    del argv
    from kaleido_tf.apps import runner

    runner.apply_model_zoo_path(FLAGS)
    task = build_task()
    return runner.run_mode(task, FLAGS, evaluation_report, run_retrieval)


def evaluation_report(metrics):
    return "\n".join(f"{k}: {v:.4f}" for k, v in metrics.items() if isinstance(v, float))


def run():
    from kaleido_tf.apps.runner import main_wrapper
    from kaleido_tf.utils.cli_errors import take_traceback_flag

    take_traceback_flag()  # --traceback: the full trace of a failure
    app.run(main_wrapper(main))


if __name__ == "__main__":
    run()
