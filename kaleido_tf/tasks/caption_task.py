"""Fashion captioning: seq2seq masked-token finetuning on the single-stream encoder, generation, scoring.

Training (UniLM-style): the caption is the finetune schema's text (`input_ids` = [CLS] caption [SEP] [PAD]...,
`input_mask`). In every step, inside the graph, a share `mask_ratio` of each caption's tokens ([SEP]
included, [CLS] and padding never) is replaced by [MASK] (at least one, at most `max_predictions`), and the
MLM head predicts them under the seq2seq attention mask: a token sees the patches and the tokens before it.
Generation then predicts the token at [MASK] one position after another. 0.3 is the default ratio: every
masked token is a training target, while the tokens before it stay mostly visible as they are at generation.

Evaluation generates captions and scores them against the reference captions with BLEU-4, METEOR, ROUGE-L
and CIDEr (`evaluators.caption`). The reference of an example is its caption as the model is trained on it:
the WordPiece-decoded `input_ids` (truncated to the text length), so hypothesis and reference share
tokenisation.

Shape legend: B batch, T text length, P max_predictions, L max caption length, V vocabulary.
"""

import collections
import math

import keras
import numpy as np
import tensorflow as tf

from kaleido_tf.evaluators.caption import METRICS, format_caption_report, score_captions
from kaleido_tf.losses import masked_lm_loss
from kaleido_tf.model_zoo import caption_decoding
from kaleido_tf.model_zoo.kaleidobert_captioner import TASK, KaleidoBERTCaptioner, caption_args
from kaleido_tf.model_zoo.kaleidobert_pretrain_model import as_config
from kaleido_tf.tasks.base_task import Task
from kaleido_tf.utils.replicas import replica_sum
from kaleido_tf.utils.vocab import model_vocab

DEFAULT_MASK_RATIO = 0.3
# Validation masks are drawn with this fixed seed, so evaluation losses of different steps compare.
VALIDATION_SEED = (20210, 6)


def mask_caption_tokens(input_ids, input_mask, mask_ratio, max_predictions, mask_id, pad_id, uniform):
    """Chooses caption tokens to predict and hides them behind [MASK].

    input_ids, input_mask: [B, T]; uniform: [B, T] random numbers in [0, 1) (which tokens are chosen).
    Eligible: positions 1..T-1 with input_mask 1 and a non-[PAD] id (so [SEP] is predicted too). Each caption
    gets k = clip(round(mask_ratio * eligible), 1, max_predictions) of them.
    Returns (masked input_ids [B, T], masked_lm_positions [B, P], masked_lm_ids [B, P],
    masked_lm_weights [B, P] float32; weight 0 marks an unused slot).
    """
    input_ids = tf.cast(input_ids, tf.int32)
    input_mask = tf.cast(input_mask, tf.int32)
    text_length = tf.shape(input_ids)[1]
    positions = tf.range(text_length)[None, :]  # [1, T]
    eligible = (positions >= 1) & (input_mask == 1) & (input_ids != pad_id)  # [B, T]
    count = tf.reduce_sum(tf.cast(eligible, tf.float32), axis=1)  # [B]
    k = tf.clip_by_value(tf.round(mask_ratio * count), 1.0, float(max_predictions))
    k = tf.cast(tf.minimum(k, count), tf.int32)  # [B]
    scores = tf.where(eligible, tf.cast(uniform, tf.float32), -1.0)  # [B, T]
    picked_scores, picked = tf.math.top_k(scores, k=max_predictions)  # [B, P]
    chosen = (tf.range(max_predictions)[None, :] < k[:, None]) & (picked_scores >= 0.0)  # [B, P]
    weights = tf.cast(chosen, tf.float32)
    masked_positions = tf.where(chosen, picked, 0)
    masked_ids = tf.where(chosen, tf.gather(input_ids, picked, batch_dims=1), 0)
    hidden = tf.reduce_sum(
        tf.one_hot(picked, text_length, dtype=tf.int32) * tf.cast(chosen, tf.int32)[:, :, None], axis=1
    )  # [B, T], 1 where masked
    masked_input = tf.where(hidden > 0, tf.constant(mask_id, tf.int32), input_ids)
    return masked_input, masked_positions, masked_ids, weights


class CaptionTask(Task):
    """Captioning on the finetune schema.

    Args:
        config: KaleidoBERTConfig (or dict).
        vocab_file: WordPiece vocab of the model (special ids and decoding); default: the packaged BERT uncased
            vocab, when it fits the model's vocab_size.
        mask_ratio: share of caption tokens predicted per training example (0 < ratio <= 1).
        max_predictions: P, at most this many predicted tokens per caption; default ceil(ratio * (T - 1)) for
            the config's text length T.
        max_caption_length, beam_size, length_penalty, no_repeat_ngram_size: generation settings (see
            KaleidoBERTCaptioner).
        metrics: the caption metrics of validation (`evaluators.caption.METRICS` names); () for loss only.
        model_kwargs: use_image_mask, fused_qkv, dtype.
    """

    name = TASK

    def __init__(
        self,
        config,
        vocab_file=None,
        mask_ratio=DEFAULT_MASK_RATIO,
        max_predictions=None,
        max_caption_length=None,
        beam_size=1,
        length_penalty=0.0,
        no_repeat_ngram_size=0,
        metrics=None,
        **model_kwargs,
    ):
        self.config = as_config(config)
        if not 0.0 < float(mask_ratio) <= 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1], got {mask_ratio}")
        self.mask_ratio = float(mask_ratio)
        text_slots = max(self.config.text_seq_len - 1, 1)
        if max_predictions is None:
            max_predictions = max(1, math.ceil(self.mask_ratio * text_slots))
        if int(max_predictions) < 1:
            raise ValueError(f"max_predictions must be at least 1, got {max_predictions}")
        self.max_predictions = int(max_predictions)
        self.vocab_file = model_vocab(vocab_file, self.config.vocab_size, "captioning", "vocab_file (--vocab_file)")
        self.tokens = caption_decoding.CaptionTokens.from_vocab_file(self.vocab_file, self.config.vocab_size)
        self.id_to_token = caption_decoding.read_id_to_token(self.vocab_file, self.config.vocab_size)
        if max_caption_length is not None and not 1 <= int(max_caption_length) < self.config.max_position_embeddings:
            raise ValueError(
                f"max_caption_length must be in [1, max_position_embeddings - 1 = "
                f"{self.config.max_position_embeddings - 1}], got {max_caption_length}"
            )
        if int(beam_size) < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}")
        self.max_caption_length = max_caption_length
        self.beam_size = int(beam_size)
        self.length_penalty = float(length_penalty)
        self.no_repeat_ngram_size = int(no_repeat_ngram_size)
        self.metrics = tuple(METRICS if metrics is None else metrics)
        self.model_kwargs = model_kwargs

    def build_model(self):
        model = KaleidoBERTCaptioner(self.config, **caption_args(self), **self.model_kwargs)
        model.build()
        return model

    # ------------------------------------------------------------------ masking and losses
    def _check(self, features):
        for key in ("input_ids", "input_mask"):
            if features.get(key) is None:
                raise KeyError(f"the input schema has no `{key}` field, needed by --task=caption (the caption)")

    def mask_features(self, features, model=None, seed=None):
        """features + a masked caption: `input_ids` with [MASK]s, `masked_lm_positions|ids|weights` [B, P].

        The random choice comes from the model's checkpointed `mask_seed_generator` (training), or from the
        stateless `seed` pair (validation).
        """
        self._check(features)
        shape = tf.shape(features["input_ids"])
        if seed is not None:
            uniform = tf.random.stateless_uniform(shape, seed=seed)
        else:
            uniform = keras.random.uniform(shape, seed=model.mask_seed_generator)
        masked, positions, ids, weights = mask_caption_tokens(
            features["input_ids"],
            features["input_mask"],
            self.mask_ratio,
            self.max_predictions,
            self.tokens.mask_id,
            self.tokens.pad_id,
            uniform,
        )
        out = dict(features)
        out.update(input_ids=masked, masked_lm_positions=positions, masked_lm_ids=ids, masked_lm_weights=weights)
        return out

    def compute_losses(self, outputs, features, global_batch_size=None):
        """The masked caption-token loss; `features` are those of `mask_features` (they hold the targets)."""
        weight_total = None
        if global_batch_size is not None:
            weight_total = replica_sum(tf.reduce_sum(tf.cast(features["masked_lm_weights"], tf.float32)))
        loss = masked_lm_loss(
            outputs["mlm_logits"], features["masked_lm_ids"], features["masked_lm_weights"], weight_total
        )
        return {"caption_loss": loss, "total": loss}

    def compute_gradients(self, features, model, global_batch_size=None, loss_scale=None):
        """The base task's forward and backward pass, on the caption masked in the graph (outside the tape)."""
        masked = self.mask_features(features, model=model)
        if loss_scale is None:
            return super().compute_gradients(masked, model, global_batch_size)
        return super().compute_gradients(masked, model, global_batch_size, loss_scale=loss_scale)

    # ------------------------------------------------------------------ validation and prediction
    def validation_step(self, features, model, global_batch_size=None):
        masked = self.mask_features(features, seed=VALIDATION_SEED)
        outputs = model(masked, training=False)
        weights = tf.reduce_sum(tf.cast(masked["masked_lm_weights"], tf.float32))
        loss = masked_lm_loss(outputs["mlm_logits"], masked["masked_lm_ids"], masked["masked_lm_weights"])
        logs = {
            "loss_sum": loss * weights,
            "predicted_tokens": weights,
            "examples": tf.cast(tf.shape(features["input_ids"])[0], tf.float32),
        }
        if self.metrics:
            logs["generated_ids"] = model.generate(features)  # [B, L]
            logs["reference_ids"] = tf.cast(features["input_ids"], tf.int32) * tf.cast(
                features["input_mask"], tf.int32
            )  # [B, T]
        return logs

    def decode(self, ids):
        """[B, L] token ids -> [B] caption strings."""
        return caption_decoding.batch_ids_to_text(np.asarray(ids), self.id_to_token, self.tokens)

    def references(self, input_ids):
        """[B, T] caption ids of the data ([CLS] caption [SEP] ...) -> [B] reference strings."""
        return self.decode(np.asarray(input_ids)[:, 1:])

    def reduce_validation(self, aggregated):
        predicted = float(aggregated.get("predicted_tokens", 0.0))
        metrics = {
            "loss": float(aggregated.get("loss_sum", 0.0)) / max(predicted, 1e-5),
            "examples": float(aggregated.get("examples", 0.0)),
        }
        if self.metrics and len(aggregated.get("generated_ids", [])):
            hypotheses = self.decode(aggregated["generated_ids"])
            references = self.references(aggregated["reference_ids"])
            scores = score_captions(hypotheses, [[r] for r in references], metrics=self.metrics)
            metrics.update(scores)
            metrics["report_text"] = format_caption_report(scores, count=len(hypotheses))
        return metrics

    def predict_step(self, features, model):
        out = {"generated_ids": model.generate(features)}
        if features.get("input_ids") is not None:
            out["reference_ids"] = tf.cast(features["input_ids"], tf.int32) * tf.cast(
                features.get("input_mask", tf.ones_like(features["input_ids"])), tf.int32
            )
        return out


# ---------------------------------------------------------------------------------------------- baseline
def most_common_caption(captions):
    """The most frequent caption of a list (ties: the one seen first)."""
    if not captions:
        raise ValueError("no captions to choose the most common one from")
    counts = collections.Counter(captions)
    best = max(counts.values())
    return next(c for c in captions if counts[c] == best)
