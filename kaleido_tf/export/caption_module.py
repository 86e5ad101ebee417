"""CaptionServingModule: the tf.Module saved for a KaleidoBERTCaptioner, with the `caption` signature.

    caption          patch features + positions (+ image_mask when the model reads it), the flat fields of
                     `serving_inputs.patch_fields`
                     -> caption [B] string, token_ids [B, L] int64 (after [CLS]; [SEP] and [PAD] as generated)
    serving_default  = caption

Generation (greedy, or beam search with the model's beam_size, and its no_repeat_ngram_size; L = the model's
max_caption_length) runs in
the graph, and so does decoding: the vocab travels as an asset, ids become tokens through a lookup table,
the caption stops at [SEP], [PAD]/[CLS]/[MASK] are dropped, pieces are joined with spaces and `##`
continuations glued on, exactly as `caption_decoding.ids_to_text` does in Python.

The module offers the interface `export_saved_model` drives through `SignatureModule`.
"""

import os
import types

import tensorflow as tf

from kaleido_tf.export import serving_inputs
from kaleido_tf.export.signature_module import SignatureModule
from kaleido_tf.export.vocab_asset import vocab_asset
from kaleido_tf.model_zoo.kaleidobert_captioner import KaleidoBERTCaptioner

CAPTIONER = "captioner"
SIGNATURE = "caption"


class CaptionDecoder(tf.Module):
    """Token ids [B, L] -> caption strings [B], in the graph, with the vocab as a SavedModel asset."""

    def __init__(self, vocab_file, tokens, vocab_size=None, name="caption_decoder"):
        super().__init__(name=name)
        vocab, self.vocab_asset, initializer = vocab_asset(vocab_file, vocab_size, to_ids=False)
        self.vocab_file_name = os.path.basename(os.fspath(vocab_file))
        self.vocab_tokens = len(vocab)
        self.tokens = tokens
        self.id_table = tf.lookup.StaticHashTable(initializer, default_value="[UNK]")

    def __call__(self, ids):
        ids = tf.cast(ids, tf.int64)  # [B, L]
        is_sep = tf.cast(tf.equal(ids, self.tokens.sep_id), tf.int64)
        before_sep = tf.equal(tf.cumsum(is_sep, axis=1), 0)  # [B, L]: positions before the first [SEP]
        keep = before_sep
        for special in self.tokens.banned_ids():
            keep = tf.logical_and(keep, tf.not_equal(ids, special))
        words = tf.ragged.boolean_mask(self.id_table.lookup(ids), keep)  # ragged [B, (words)]
        joined = tf.strings.reduce_join(words, axis=1, separator=" ")  # [B]
        return tf.strings.regex_replace(joined, " ##", "")


class CaptionServingModule(SignatureModule):
    """Wraps a built KaleidoBERTCaptioner (weights loaded) into the `caption` signature.

    Args:
        model: the captioner.
        vocab_file: the model's WordPiece vocab (packed as an asset).
        max_length, beam_size, length_penalty: generation settings (default: the model's).
    """

    def __init__(
        self, model, vocab_file, max_length=None, beam_size=None, length_penalty=None, name="kaleido_caption_serving"
    ):
        super().__init__(name=name)
        if not isinstance(model, KaleidoBERTCaptioner):
            raise TypeError(f"CaptionServingModule exports a KaleidoBERTCaptioner, got {type(model).__name__}")
        if not model.built:
            raise ValueError("the model must be built (and its weights loaded) before export")
        self.kind = CAPTIONER
        self.config = model.config
        self.max_length = model.resolve_max_length(max_length)
        self.beam_size = int(model.beam_size if beam_size is None else beam_size)
        self.length_penalty = float(model.length_penalty if length_penalty is None else length_penalty)
        self.no_repeat_ngram_size = model.no_repeat_ngram_size
        self.decoder = CaptionDecoder(vocab_file, model.tokens, vocab_size=model.config.vocab_size)
        self.model_variables = []
        self.patch_fields = serving_inputs.patch_fields(model.config, use_image_mask=model.use_image_mask)
        self.default_signature = SIGNATURE
        fields = self.patch_fields
        decoder = self.decoder

        def caption(features):
            checked = serving_inputs.check_inputs(dict(features), fields)
            ids = model.generate(
                checked, max_length=self.max_length, beam_size=self.beam_size, length_penalty=self.length_penalty
            )  # [B, L]
            return {"caption": decoder(ids), "token_ids": tf.cast(ids, tf.int64)}

        spec = {field.name: field.spec() for field in fields}
        functions = {SIGNATURE: tf.function(caption, input_signature=[spec], autograph=False)}
        self._functions = types.MappingProxyType(functions)

    def describe(self):
        fields = {field.name: field.to_dict() for field in self.patch_fields}
        generation = {
            "max_length": self.max_length,
            "beam_size": self.beam_size,
            "length_penalty": self.length_penalty,
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
        }
        return self.describe_signatures(fields, extra={"generation": generation})
