"""RetrievalServingModule: the tf.Module saved for a KaleidoBERTRetrievalModel, the signatures of search.

    embed_text       text [B] string (WordPiece in the graph, export/text_encoder.py)
                     -> embedding [B, D] float32, unit length
    embed_text_ids   input_ids, input_mask, segment_ids [B, T] -> embedding [B, D]
    embed_image      the flat patch fields of `serving_inputs.patch_fields` -> embedding [B, D]
    itm_score        text ids + patch fields of a pair -> match_probability [B], logits [B, 2]
    serving_default  = embed_text (embed_image without a text encoder)

The module offers the interface `export_saved_model` drives through `SignatureModule`.
"""

import types

import tensorflow as tf

from kaleido_tf.export import serving_inputs
from kaleido_tf.export.signature_module import SignatureModule
from kaleido_tf.model_zoo.kaleidobert_retrieval_model import KaleidoBERTRetrievalModel

RETRIEVAL = "retrieval"


class RetrievalServingModule(SignatureModule):
    """Wraps a built KaleidoBERTRetrievalModel (weights loaded).

    Args:
        model: the retrieval model.
        text_encoder: a WordPieceEncoder for `embed_text` (None: no raw-text signature).
        text_length: T of the id signatures (default: the encoder's, else the config's text_seq_len).
    """

    def __init__(self, model, text_encoder=None, text_length=None, name="kaleido_retrieval_serving"):
        super().__init__(name=name)
        if not isinstance(model, KaleidoBERTRetrievalModel):
            raise TypeError(f"RetrievalServingModule exports a KaleidoBERTRetrievalModel, got {type(model).__name__}")
        if not model.built:
            raise ValueError("the model must be built (and its weights loaded) before export")
        self.kind = RETRIEVAL
        self.config = model.config
        if text_length is None:
            text_length = text_encoder.text_length if text_encoder is not None else model.config.text_seq_len
        if text_encoder is not None and text_encoder.text_length != text_length:
            raise ValueError(
                f"the text encoder pads to {text_encoder.text_length} tokens, the signatures take {text_length}"
            )
        self.text_length = int(text_length)
        self.model_variables = []
        self.text_encoder = text_encoder
        self.text_fields = serving_inputs.text_fields(self.text_length)
        self.patch_fields = serving_inputs.patch_fields(model.config, use_image_mask=model.use_image_mask)
        vocab_size = model.config.vocab_size
        text_fields, patch_fields = self.text_fields, self.patch_fields
        pair_fields = text_fields + patch_fields

        def embed_text_ids(features):
            checked = serving_inputs.check_inputs(dict(features), text_fields, vocab_size=vocab_size)
            return {"embedding": model.embed_text(checked)}

        def embed_image(features):
            return {"embedding": model.embed_image(serving_inputs.check_inputs(dict(features), patch_fields))}

        def itm_score(features):
            checked = serving_inputs.check_inputs(dict(features), pair_fields, vocab_size=vocab_size)
            logits = tf.cast(model.itm_logits(checked), tf.float32)  # [B, 2]
            return {"match_probability": tf.nn.softmax(logits, axis=-1)[:, 1], "logits": logits}

        def spec(fields):
            return [{field.name: field.spec() for field in fields}]

        functions = {
            "embed_text_ids": tf.function(embed_text_ids, input_signature=spec(text_fields), autograph=False),
            "embed_image": tf.function(embed_image, input_signature=spec(patch_fields), autograph=False),
            "itm_score": tf.function(itm_score, input_signature=spec(pair_fields), autograph=False),
        }
        self.default_signature = "embed_image"
        if text_encoder is not None:

            def embed_text(text):
                return {"embedding": model.embed_text(text_encoder(text))}

            functions["embed_text"] = tf.function(
                embed_text, input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False
            )
            self.default_signature = "embed_text"
        # Kept out of the tracked attributes: the SavedModel holds each signature once.
        self._functions = types.MappingProxyType(functions)

    def describe(self):
        fields = {field.name: field.to_dict() for field in self.text_fields + self.patch_fields}
        fields["text"] = {"dtype": "string", "shape": [-1], "description": "raw text, WordPiece in the graph"}
        return self.describe_signatures(fields)
