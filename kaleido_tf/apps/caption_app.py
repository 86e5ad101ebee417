"""Captioning applications: --task=caption of the finetuning application (the task from the flags, predict mode)
and `finetune_and_score_captions`, the demo's finetune-generate-score run in one call.

Predict writes OUTPUT_DIR/captions.tsv, one line per image id (the first example of an image wins):

    prod_img_id <TAB> image_prod_id <TAB> caption <TAB> reference

and, when the input holds captions (`input_ids`), scores the generated captions against them
(OUTPUT_DIR/captions_metrics.json, printed as well).
"""

import os

import keras
import numpy as np
from tqdm.auto import tqdm

from kaleido_tf.apps import runner
from kaleido_tf.datasets import make_tfrecord_dataset
from kaleido_tf.engines import Trainer
from kaleido_tf.evaluators.caption import format_caption_report, score_captions
from kaleido_tf.model_zoo import registry
from kaleido_tf.tasks.caption_task import DEFAULT_MASK_RATIO, CaptionTask, most_common_caption
from kaleido_tf.utils.io import atomic_write


def build_caption_task(flags):
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
    if not flags.output_dir:
        raise runner.UsageError("--output_dir is required in predict mode")
    predictor = runner.predictor_for(task, flags, runner.make_strategy(flags))
    schema = runner.input_schema(flags.input_schema, task.config, flags.predict_input_fp)
    batches = runner.dataset_fn(flags.predict_input_fp, schema, flags.predict_batch_size, False, num_epochs=1)
    rows = generate_captions(predictor, task, batches, progress=flags.progress)
    path = os.path.join(flags.output_dir, "captions.tsv")
    write_captions_tsv(path, rows)
    runner.say(f"wrote {len(rows)} captions to {path}")
    metrics = None
    if rows and all(r["reference"] for r in rows) and task.metrics:
        metrics = score_captions([r["caption"] for r in rows], [[r["reference"]] for r in rows], metrics=task.metrics)
        print(format_caption_report(metrics, count=len(rows)), flush=True)
        runner.write_json(os.path.join(flags.output_dir, "captions_metrics.json"), dict(metrics, images=len(rows)))
    return path, metrics


# ---------------------------------------------------------------------------------------------- generation
def _tfrecord_batches(path, batch_size, training, seed=0):
    def make(context):
        return make_tfrecord_dataset(
            path, batch_size, training, input_context=context, seed=seed, num_epochs=None if training else 1
        )

    return make


def _first_text(value):
    value = np.asarray(value).reshape(-1)[0]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


CAPTION_COLUMNS = ("prod_img_id", "image_prod_id", "caption", "reference")


def write_captions_tsv(path, rows):
    """rows: [{prod_img_id, image_prod_id, caption, reference}] -> a TSV file with a header, written atomically."""
    with atomic_write(path) as f:
        f.write("\t".join(CAPTION_COLUMNS) + "\n")
        for row in rows:
            f.write("\t".join(" ".join(str(row[k]).split()) for k in CAPTION_COLUMNS) + "\n")  # no tab in a cell


def generate_captions(predictor, task, dataset_fn, progress=False):
    """Captions every image of a dataset once: [{prod_img_id, image_prod_id, caption, reference}] in data order
    (the first example of an image id wins; without ids, examples are numbered). `predictor`: a Predictor, or
    a Trainer after training (anything with `predict(dataset_fn, passthrough)`)."""
    rows, seen, count = [], set(), 0
    for out in tqdm(
        predictor.predict(dataset_fn, passthrough=("prod_img_id", "image_prod_id")),
        unit="batch",
        desc="caption",
        disable=not progress,
    ):
        captions = task.decode(out["generated_ids"])
        references = task.references(out["reference_ids"]) if "reference_ids" in out else [""] * len(captions)
        for i, caption in enumerate(captions):
            image_id = _first_text(out["prod_img_id"][i]) if "prod_img_id" in out else f"example_{count}"
            count += 1
            if image_id in seen:
                continue
            seen.add(image_id)
            product = _first_text(out["image_prod_id"][i]) if "image_prod_id" in out else ""
            rows.append(
                {"prod_img_id": image_id, "image_prod_id": product, "caption": caption, "reference": references[i]}
            )
    return rows


# ---------------------------------------------------------------------------------------------- one call
def finetune_and_score_captions(
    pretrained,
    train_data,
    eval_data,
    vocab_file,
    model_dir,
    config=None,
    train_steps=400,
    batch_size=32,
    learning_rate=2e-3,
    warmup_ratio=0.1,
    mask_ratio=DEFAULT_MASK_RATIO,
    beam_size=1,
    max_caption_length=None,
    no_repeat_ngram_size=0,
    num_examples=6,
    progress=True,
    seed=0,
):
    """Finetunes captioning from a pretrained model, captions the evaluation images and scores them against
    their references and against the most-common-caption baseline. One call for the demo.

    Args:
        pretrained: a pretraining checkpoint (TF1, converted, or a Trainer model_dir of the pretraining task),
            or None to start from a random initialisation.
        train_data, eval_data: finetune-schema TFRecord directories (schema.json beside the shards).
        vocab_file: the model's WordPiece vocab.
        model_dir: where the captioning Trainer writes checkpoints, logs and `captions.tsv`.
        config: KaleidoBERTConfig; default the one stored beside `pretrained`.
        train_steps, batch_size, learning_rate, warmup_ratio: the finetuning run.
        mask_ratio, beam_size, max_caption_length, no_repeat_ngram_size: see CaptionTask.
        num_examples: generated/reference pairs returned under "examples" (first images of eval_data).
    Returns a dict:
        metrics           BLEU-4, METEOR, ROUGE-L, CIDEr (x 100) of the generated captions
        baseline          the same for the baseline that emits `baseline_caption` for every image
        baseline_caption  the most common reference caption of train_data
        examples          [{prod_img_id, image_prod_id, caption, reference}] (prod_img_id is
                          "<product_id>_<view>", the catalog image images/<product_id>_<view>.png)
        images            images scored; curve [(step, loss)]; captions_path; load_message
    """
    if config is None:
        if pretrained is None:
            raise ValueError("give a config when there is no pretrained model to read it from")
        config = registry.config_for(pretrained)
    keras.utils.set_random_seed(seed)
    task = CaptionTask(
        config,
        vocab_file=vocab_file,
        mask_ratio=mask_ratio,
        beam_size=beam_size,
        max_caption_length=max_caption_length,
        no_repeat_ngram_size=no_repeat_ngram_size,
    )
    trainer = Trainer(
        task,
        model_dir,
        learning_rate=learning_rate,
        train_steps=train_steps,
        warmup_ratio=warmup_ratio,
        log_steps=10,
        progress=progress,
    )
    load_message = trainer.initialize((lambda m: registry.load_weights(m, pretrained)) if pretrained else None)
    trainer.train(_tfrecord_batches(train_data, batch_size, True, seed=seed), batch_size)

    rows = generate_captions(trainer, task, _tfrecord_batches(eval_data, batch_size, False), progress=progress)
    if not rows:
        raise ValueError(f"no examples in {eval_data}")
    train_references = []
    for batch in _tfrecord_batches(train_data, 256, False)(None):
        train_references += task.references(batch["input_ids"].numpy() * batch["input_mask"].numpy())
    baseline_caption = most_common_caption(train_references)
    references = [[r["reference"]] for r in rows]
    metrics = score_captions([r["caption"] for r in rows], references, metrics=task.metrics)
    baseline = score_captions([baseline_caption] * len(rows), references, metrics=task.metrics)
    path = os.path.join(model_dir, "captions.tsv")
    write_captions_tsv(path, rows)
    return {
        "metrics": metrics,
        "baseline": baseline,
        "baseline_caption": baseline_caption,
        "examples": rows[:num_examples],
        "images": len(rows),
        "curve": [(step, logs["total"]) for step, logs in getattr(trainer, "history", [])],
        "captions_path": path,
        "load_message": load_message,
    }
