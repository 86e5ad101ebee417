"""--task=caption of the finetuning application: the task from the flags, and predict mode.

Predict writes OUTPUT_DIR/captions.tsv, one line per image id (the first example of an image wins):

    prod_img_id <TAB> image_prod_id <TAB> caption <TAB> reference

and, when the input holds captions (`input_ids`), scores the generated captions against them
(OUTPUT_DIR/captions_metrics.json, printed as well).
"""

import os

from kaleido_tf.apps import runner


def build_caption_task(flags):
    from kaleido_tf.tasks.caption_task import CaptionTask

    config = runner.resolve_config(flags)
    try:
        return CaptionTask(
            config,
            vocab_file=flags.vocab_file,
            mask_ratio=flags.caption_mask_ratio,
            max_predictions=flags.caption_max_predictions,
            max_caption_length=flags.max_caption_length,
            beam_size=flags.beam_size,
            length_penalty=flags.caption_length_penalty,
            no_repeat_ngram_size=flags.no_repeat_ngram_size,
            use_image_mask=flags.use_image_mask,
        )
    except ValueError as e:  # a vocab or setting that does not fit the model: one line, exit status 2
        raise runner.UsageError(f"--task=caption: {e}") from None


def run_caption_predict(task, flags):
    """Generates a caption per image of --predict_input_fp; returns (path of captions.tsv, metrics or None)."""
    from kaleido_tf.engines import Trainer
    from kaleido_tf.evaluators.caption import format_caption_report, score_captions
    from kaleido_tf.tasks.caption_task import generate_captions, write_captions_tsv

    if not flags.output_dir:
        raise runner.UsageError("--output_dir is required in predict mode")
    trainer = Trainer(task, flags.output_dir, runner.make_strategy(flags), progress=False)
    runner.say(runner.registry.load_weights(trainer.model, runner.weights_for_prediction(flags)))
    schema = runner.input_schema(flags.input_schema, task.config, flags.predict_input_fp)
    batches = runner.dataset_fn(flags.predict_input_fp, schema, flags.predict_batch_size, False, num_epochs=1)
    rows = generate_captions(trainer, task, batches, progress=flags.progress)
    path = os.path.join(flags.output_dir, "captions.tsv")
    write_captions_tsv(path, rows)
    runner.say(f"wrote {len(rows)} captions to {path}")
    metrics = None
    if rows and all(r["reference"] for r in rows) and task.metrics:
        metrics = score_captions([r["caption"] for r in rows], [[r["reference"]] for r in rows], metrics=task.metrics)
        print(format_caption_report(metrics, count=len(rows)), flush=True)
        runner.write_json(os.path.join(flags.output_dir, "captions_metrics.json"), dict(metrics, images=len(rows)))
    return path, metrics
