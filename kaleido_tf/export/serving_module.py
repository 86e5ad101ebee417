"""KaleidoServingModule: the tf.Module saved for TF Serving, with one tf.function per signature.

Signatures (B batch, T text length, S = T + 55, H hidden size, C classes):

    pretraining model      itm_score      -> match_probability [B], logits [B, 2]      (predict semantics)
                           embed          -> pooled_output [B, H], sequence_output [B, S, H]
    classifier             classify       -> probabilities [B, C], class_id [B], class_name [B], logits [B, C]
                           embed          -> pooled_output [B, H], sequence_output [B, S, H]
    with a vocab, also     itm_score_text (pretraining) or classify_text (classifier): the same outputs,
                                          taking raw strings `text` [B] instead of the three text inputs
                                          (WordPiece inside the graph)
                           tokenize       text [B] -> input_ids, input_mask, segment_ids [B, T]
    serving_default        = itm_score (pretraining model) or classify (classifier)

The id signatures take the flat input-schema fields listed in `serving_inputs`. The module keeps the variables
the traced functions capture in a list attribute, so the SavedModel owns the weights and nothing of kaleido_tf
is needed to load it; the Keras model itself is only captured by the traced functions.
"""

import types

import tensorflow as tf

from kaleido_tf.export import serving_inputs
from kaleido_tf.export.signature_module import SignatureModule
from kaleido_tf.model_zoo.kaleidobert_classifier import KaleidoBERTClassifier
from kaleido_tf.model_zoo.kaleidobert_pretrain_model import KaleidoBERTPretrainModel

PRETRAIN, CLASSIFIER = "pretrain", "classifier"


def model_kind(model):
    """ "pretrain" or "classifier"; TypeError for any other object."""
    if isinstance(model, KaleidoBERTPretrainModel):
        return PRETRAIN
    if isinstance(model, KaleidoBERTClassifier):
        return CLASSIFIER
    raise TypeError(f"can export a KaleidoBERTPretrainModel or a KaleidoBERTClassifier, got {type(model).__name__}")


def _float32(x):
    return tf.cast(x, tf.float32)


class KaleidoServingModule(SignatureModule):
    """Wraps a built kaleido_tf model into serving signatures.

    Args:
        model: a built KaleidoBERTPretrainModel or KaleidoBERTClassifier (weights loaded).
        text_encoder: a `WordPieceEncoder` for the `*_text` and `tokenize` signatures, or None for none.
        class_names: names of the classifier's classes, index = class id (default "class_<id>").
        text_length: T of every signature (default: the config's text_seq_len); at most
            max_position_embeddings.
    """

    def __init__(self, model, text_encoder=None, class_names=None, text_length=None, name="kaleido_serving"):
        super().__init__(name=name)
        self.kind = model_kind(model)
        config = model.config
        self.config = config
        self.text_length = int(text_length if text_length is not None else config.text_seq_len)
        if not 1 <= self.text_length <= config.max_position_embeddings:
            raise ValueError(
                f"text length must be in [1, max_position_embeddings={config.max_position_embeddings}], "
                f"got {self.text_length}"
            )
        if text_encoder is not None and text_encoder.text_length != self.text_length:
            raise ValueError(
                f"the text encoder pads to {text_encoder.text_length} tokens, the signatures take {self.text_length}"
            )
        if not model.built:
            raise ValueError("the model must be built (and its weights loaded) before export")
        # The variables the traced functions capture are tracked in `model_variables` (see `signatures`).
        self.model_variables = []
        self.text_encoder = text_encoder
        self.class_names = None
        if self.kind == CLASSIFIER:
            names = list(class_names) if class_names is not None else [f"class_{i}" for i in range(model.num_classes)]
            if len(names) != model.num_classes:
                raise ValueError(f"{len(names)} class names for a model with {model.num_classes} classes")
            self.class_names = names

        self.text_fields = serving_inputs.text_fields(self.text_length)
        self.patch_fields = serving_inputs.patch_fields(config, use_image_mask=getattr(model, "use_image_mask", False))
        self.input_fields = self.text_fields + self.patch_fields

        heads = self._heads(model)
        self.default_signature = "itm_score" if self.kind == PRETRAIN else "classify"
        functions = {}
        for head_name, head in heads.items():
            functions[head_name] = self._ids_function(head)
        if text_encoder is not None:
            functions[f"{self.default_signature}_text"] = self._text_function(heads[self.default_signature])
            functions["tokenize"] = tf.function(
                lambda text: text_encoder(text),
                input_signature=[tf.TensorSpec([None], tf.string, name="text")],
                autograph=False,
            )
        # Kept out of the module's tracked attributes: the SavedModel then holds each signature once (saving
        # would otherwise trace every tf.function attribute again); clients call `loaded.signatures[name]`.
        self._functions = types.MappingProxyType(functions)

    # ------------------------------------------------------------------ heads: checked features -> outputs
    def _heads(self, model):
        if self.kind == PRETRAIN:

            def itm_score(features):
                logits = _float32(model(features, training=False, mode="predict")["nsp_logits"])  # [B, 2]
                return {"match_probability": tf.nn.softmax(logits, axis=-1)[:, 1], "logits": logits}

            return {"itm_score": itm_score, "embed": self._embed(model)}

        names = tf.constant(self.class_names, tf.string)  # [C]

        def classify(features):
            logits = _float32(model(features, training=False)["logits"])  # [B, C]
            class_id = tf.argmax(logits, axis=-1, output_type=tf.int64)  # [B]
            return {
                "probabilities": tf.nn.softmax(logits, axis=-1),
                "class_id": class_id,
                "class_name": tf.gather(names, class_id),
                "logits": logits,
            }

        return {"classify": classify, "embed": self._embed(model)}

    @staticmethod
    def _embed(model):
        # The backbone alone: predict mode leaves the inputs as they are, so its outputs are the model's.
        def embed(features):
            sequence_output, pooled_output = model.backbone(features, training=False)  # [B, S, H], [B, H]
            return {"pooled_output": _float32(pooled_output), "sequence_output": _float32(sequence_output)}

        return embed

    # ------------------------------------------------------------------ signature wrappers
    def _ids_function(self, head):
        fields = self.input_fields
        vocab_size = self.config.vocab_size

        def serve(features):
            return head(serving_inputs.check_inputs(dict(features), fields, vocab_size=vocab_size))

        spec = {field.name: field.spec() for field in fields}
        return tf.function(serve, input_signature=[spec], autograph=False)

    def _text_function(self, head):
        fields = self.input_fields
        vocab_size = self.config.vocab_size
        encoder = self.text_encoder

        def serve(inputs):
            inputs = dict(inputs)
            text = inputs.pop("text")  # [B]
            features = dict(inputs, **encoder(text))
            batch_size = tf.shape(text, out_type=tf.int64)[0]
            checked = serving_inputs.check_inputs(
                features, fields, vocab_size=vocab_size, batch_size=batch_size, batch_source="text"
            )
            return head(checked)

        spec = {"text": tf.TensorSpec([None], tf.string, name="text")}
        spec.update({field.name: field.spec() for field in self.patch_fields})
        return tf.function(serve, input_signature=[spec], autograph=False)

    def describe(self):
        """Inputs and outputs of every signature, as JSON-friendly dicts (for the export metadata)."""
        fields = {field.name: field.to_dict() for field in self.input_fields}
        fields["text"] = {"dtype": "string", "shape": [-1], "description": "raw text, one string per example"}
        return self.describe_signatures(fields)
