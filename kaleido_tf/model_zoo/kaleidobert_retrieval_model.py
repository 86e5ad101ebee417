"""Kaleido-BERT for catalog search: one backbone as a dual encoder (ITC) and as a pair scorer (ITM).

Shape legend: B batch, H hidden size, D ITC embedding size.
"""

import keras

from kaleido_tf.layers.heads import PatchClassificationHead
from kaleido_tf.layers.itc_head import ITCHead
from kaleido_tf.model_zoo.kaleidobert_backbone import IMAGE_PREFIX_IDS, KaleidoBERTBackbone
from kaleido_tf.model_zoo.kaleidobert_pretrain_model import as_config

# The variables a pretraining checkpoint lacks: loaded models start them fresh (and the load report says so).
FRESH_HEADS = ("itc_head",)
# The config.json key naming the image-only pass's text prefix (token ids of [CLS] [SEP] in the model's vocab);
# absent: IMAGE_PREFIX_IDS, the ids of the released BERT uncased vocab.
IMAGE_PREFIX_KEY = "image_prefix_ids"
PREFIX_TOKENS = ("[CLS]", "[SEP]")


def image_prefix_ids_from_vocab(vocab_path):
    """The ids of [CLS] and [SEP] in a WordPiece vocab file (one token a line), for `IMAGE_PREFIX_KEY`."""
    with open(vocab_path, encoding="utf-8") as f:
        ids = {line.rstrip("\n"): i for i, line in enumerate(f)}
    missing = [t for t in PREFIX_TOKENS if t not in ids]
    if missing:
        raise ValueError(f"{vocab_path}: the vocab has no {' '.join(missing)} token (the image-only pass's prefix)")
    return [ids[t] for t in PREFIX_TOKENS]


def resolve_image_prefix_ids(config, image_prefix_ids=None):
    """The prefix ids: the argument, else the config's `image_prefix_ids` key, else IMAGE_PREFIX_IDS; each id
    must be inside the config's vocab."""
    if image_prefix_ids is None:
        image_prefix_ids = config.extra.get(IMAGE_PREFIX_KEY, IMAGE_PREFIX_IDS)
    ids = tuple(int(i) for i in image_prefix_ids)
    if not ids or any(not 0 <= i < config.vocab_size for i in ids):
        raise ValueError(
            f"image_prefix_ids {list(ids)} must be 1+ token ids below vocab_size {config.vocab_size}; set the "
            f"config key {IMAGE_PREFIX_KEY!r} to the ids of [CLS] [SEP] in the model's vocab"
        )
    return ids


def itc_inputs_text(backbone, features, training=False):
    """The ITC text feature: the [CLS] output of the text-only pass, [B, H]."""
    sequence_output, _ = backbone.encode_text(features, training=training)  # [B, T, H]
    return sequence_output[:, 0]


def itc_inputs_image(backbone, features, training=False, prefix_ids=IMAGE_PREFIX_IDS):
    """The ITC image feature: the position-0 output of the image-only pass, [B, H]."""
    sequence_output, _ = backbone.encode_image(features, training=training, prefix_ids=prefix_ids)  # [B, 2+N, H]
    return sequence_output[:, 0]


@keras.saving.register_keras_serializable(package="kaleido_tf")
class KaleidoBERTRetrievalModel(keras.Model):
    """Backbone (`bert`), the pretraining ITM head (`itm_head`) and an ITC head (`itc_head`).

    Public interface of search:
        embed_text(features) -> [B, D] float32, unit length (features: input_ids, input_mask, segment_ids);
        embed_image(features) -> [B, D] float32, unit length (features: the img_feature_convert_<level> and
            img_loc_position_<level> keys of the backbone);
        itm_logits(features) -> [B, 2] (the pretraining ITM head on the full pair; index 1 = match).
    `model(features, training)` returns {"text_embedding", "image_embedding" [B, D], "temperature" [],
    "pooled_output" [B, H] of the full pairs, "itm_logits" [B, 2]}.

    Args:
        config: a KaleidoBERTConfig (or its dict).
        itc_embedding_size: D (256 as ALBEF).
        itc_temperature: initial temperature (0.07, clipped to [0.001, 0.5] as ALBEF does).
        image_prefix_ids: the text prefix of the image-only pass ([CLS] [SEP]); None: the config's
            `image_prefix_ids` key, else IMAGE_PREFIX_IDS (the released vocab's ids).
        use_image_mask, fused_qkv: as for the backbone.
    """

    def __init__(
        self,
        config=None,
        itc_embedding_size=256,
        itc_temperature=0.07,
        image_prefix_ids=None,
        use_image_mask=False,
        fused_qkv=False,
        **kwargs,
    ):
        kwargs.setdefault("name", "kaleido_bert_retrieval")
        super().__init__(**kwargs)
        self.config = as_config(config)
        self.task = "retrieval"
        self.itc_embedding_size = itc_embedding_size
        self.itc_temperature = itc_temperature
        self.image_prefix_ids = resolve_image_prefix_ids(self.config, image_prefix_ids)
        self.use_image_mask = use_image_mask
        self.fused_qkv = fused_qkv
        c, policy = self.config, self.dtype_policy
        self.backbone = KaleidoBERTBackbone.from_kaleido_config(
            c, use_image_mask=use_image_mask, fused_qkv=fused_qkv, name="bert", dtype=policy
        )
        self.itm_head = PatchClassificationHead(1, c.hidden_size, 2, c.initializer_range, name="itm_head", dtype=policy)
        self.itc_head = ITCHead(
            c.hidden_size,
            embedding_size=itc_embedding_size,
            temperature=itc_temperature,
            initializer_range=c.initializer_range,
            name="itc_head",
            dtype=policy,
        )

    def build(self, input_shape=None):
        self.backbone.build()
        self.itm_head.build()
        self.itc_head.build()
        self.built = True

    # ------------------------------------------------------------------ the search interface
    def embed_text(self, features, training=False):
        """Text alone -> [B, D] float32, unit length."""
        return self.itc_head.project_text(itc_inputs_text(self.backbone, features, training=training))

    def embed_image(self, features, training=False):
        """Image alone -> [B, D] float32, unit length."""
        image = itc_inputs_image(self.backbone, features, training=training, prefix_ids=self.image_prefix_ids)
        return self.itc_head.project_image(image)

    def itm_logits(self, features, training=False):
        """The full (text, image) pair -> ITM logits [B, 2], as the pretraining model's `nsp_logits`."""
        return self.itm_head(self.backbone.pooled_output(features, training=training))

    def temperature(self):
        return self.itc_head.clipped_temperature()

    # ------------------------------------------------------------------ call
    def call(self, features, training=False):
        pooled_output = self.backbone.pooled_output(features, training=training)  # [B, H]
        return {
            "text_embedding": self.embed_text(features, training=training),  # [B, D]
            "image_embedding": self.embed_image(features, training=training),  # [B, D]
            "temperature": self.temperature(),
            "pooled_output": pooled_output,
            "itm_logits": self.itm_head(pooled_output),  # [B, 2]
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            config=self.config.to_dict(),
            itc_embedding_size=self.itc_embedding_size,
            itc_temperature=self.itc_temperature,
            image_prefix_ids=list(self.image_prefix_ids),
            use_image_mask=self.use_image_mask,
            fused_qkv=self.fused_qkv,
        )
        return config
