"""Kaleido-BERT for fashion captioning: the single-stream backbone under a seq2seq attention mask + the MLM head.

The sequence is [text T | patches N] as in pretraining. Patches attend to each other only; caption token i
attends to every patch and to the caption tokens 0..i (`layers.seq2seq_attention_mask`). Training predicts
masked caption tokens with the pretraining MLM head (see `tasks.CaptionTask`); generation puts [MASK] at the
next position and predicts it (`caption_decoding`). Every variable is a pretraining variable (backbone and MLM
head), so a pretraining checkpoint, TF1 or converted, initialises the whole model.

Shape legend: B batch, T text length, N patches (55), S = T + N, P predicted positions, V vocabulary,
L max caption length, H hidden size.
"""

import dataclasses

import keras
import tensorflow as tf
from keras import ops

from kaleido_tf.layers.heads import MLMHead
from kaleido_tf.layers.mask import seq2seq_attention_mask
from kaleido_tf.model_zoo import caption_decoding
from kaleido_tf.model_zoo.kaleidobert_backbone import KaleidoBERTBackbone
from kaleido_tf.model_zoo.kaleidobert_pretrain_model import as_config
from kaleido_tf.utils.kaleido_levels import FEATURE_KEY, LEVEL_NAMES, feature_key, position_key, segment_key

TASK = "caption"


# The decoding settings: constructor arguments, attributes and config keys of the same names (a caption task
# holds them too).
DECODING_ARGS = ("max_caption_length", "beam_size", "length_penalty", "no_repeat_ngram_size")


def caption_args(owner):
    """The token ids and decoding settings of `owner` (a captioner, or a caption task that builds one), as
    KaleidoBERTCaptioner keyword arguments."""
    return dict(dataclasses.asdict(owner.tokens), **{name: getattr(owner, name) for name in DECODING_ARGS})


@keras.saving.register_keras_serializable(package="kaleido_tf")
class KaleidoBERTCaptioner(keras.Model):
    """Backbone (layer "bert") + MLM head (layer "mlm_head") under the captioning attention mask.

    `model(features, training)` takes the finetune schema's text (`input_ids`, `input_mask`, optional
    `segment_ids`; masked by the caller) and patches, and `masked_lm_positions` [B, P] (default: every text
    position). Returns {"mlm_logits": [B*P, V], "sequence_output": [B, S, H]}.

    `model.generate(features)` captions the patches of `features` (text fields are ignored): token ids [B, L].

    Args:
        config: a KaleidoBERTConfig (or its dict).
        pad_id, cls_id, sep_id, mask_id: special token ids (BERT uncased by default; see
            `caption_decoding.CaptionTokens.from_vocab_file`).
        max_caption_length: L, caption tokens generated at most ([SEP] included); default text_seq_len - 1.
            At most max_position_embeddings - 1.
        beam_size: default beams of `generate` (1: greedy).
        length_penalty: GNMT length-penalty exponent for ranking finished beams (0: raw log-probability).
        no_repeat_ngram_size: n > 0 never generates an n-gram twice in a caption (0: off).
        mask_seed: seed of the caption-token masking drawn in training (`CaptionTask`); its state is a
            checkpointed random state of the model, as dropout's is.
        use_image_mask, fused_qkv: as for the other models.
    """

    def __init__(
        self,
        config=None,
        pad_id=0,
        cls_id=101,
        sep_id=102,
        mask_id=103,
        max_caption_length=None,
        beam_size=1,
        length_penalty=0.0,
        no_repeat_ngram_size=0,
        mask_seed=None,
        use_image_mask=False,
        fused_qkv=False,
        **kwargs,
    ):
        kwargs.setdefault("name", "kaleido_bert_caption")
        super().__init__(**kwargs)
        self.config = as_config(config)
        c = self.config
        self.task = TASK
        self.tokens = caption_decoding.CaptionTokens(int(pad_id), int(cls_id), int(sep_id), int(mask_id))
        for name, value in dataclasses.asdict(self.tokens).items():
            if not 0 <= value < c.vocab_size:
                raise ValueError(f"{name}={value} lies outside the model's vocabulary [0, {c.vocab_size})")
        if max_caption_length is None:
            max_caption_length = c.text_seq_len - 1
        self.max_caption_length = int(max_caption_length)
        if not 1 <= self.max_caption_length < c.max_position_embeddings:
            raise ValueError(
                f"max_caption_length must be in [1, max_position_embeddings - 1 = "
                f"{c.max_position_embeddings - 1}], got {self.max_caption_length}"
            )
        self.beam_size = int(beam_size)
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}")
        self.length_penalty = float(length_penalty)
        self.no_repeat_ngram_size = int(no_repeat_ngram_size)
        if self.no_repeat_ngram_size < 0:
            raise ValueError(f"no_repeat_ngram_size must be >= 0, got {no_repeat_ngram_size}")
        self.mask_seed = mask_seed
        self.use_image_mask = use_image_mask
        self.fused_qkv = fused_qkv
        policy = self.dtype_policy
        self.backbone = KaleidoBERTBackbone.from_kaleido_config(
            c, use_image_mask=use_image_mask, fused_qkv=fused_qkv, name="bert", dtype=policy
        )
        self.mlm_head = MLMHead(c.vocab_size, c.hidden_size, c.initializer_range, name="mlm_head", dtype=policy)
        self.mask_seed_generator = keras.random.SeedGenerator(mask_seed, name="caption_masking")

    def build(self, input_shape=None):
        self.backbone.build()
        self.mlm_head.build()
        self.built = True

    # ------------------------------------------------------------------ forward
    def call(self, features, training=False):
        if features.get("input_ids") is None:
            raise ValueError("the captioner's forward pass needs the caption `input_ids` (use generate() to caption)")
        input_ids = features["input_ids"]
        input_mask = features.get("input_mask")
        if input_mask is None:
            input_mask = ops.ones_like(input_ids)
        attention_mask = seq2seq_attention_mask(input_mask, self.backbone.num_patches)  # [B, S, S]
        sequence_output, _ = self.backbone(features, training=training, attention_mask=attention_mask)  # [B, S, H]
        text_length = ops.shape(input_ids)[1]
        text_output = sequence_output[:, :text_length]  # [B, T, H]
        positions = features.get("masked_lm_positions")
        if positions is None:
            positions = ops.tile(ops.expand_dims(ops.arange(text_length), 0), (ops.shape(input_ids)[0], 1))  # [B, T]
        logits = self.mlm_head(text_output, positions, self.backbone.embeddings.word_embeddings)  # [B*P, V]
        return {"mlm_logits": logits, "sequence_output": sequence_output}

    # ------------------------------------------------------------------ generation
    @staticmethod
    def patch_features(features):
        """The fields of `features` the backbone reads for the image (features, positions, masks, segments)."""
        keys = ["image_mask"]
        for level in LEVEL_NAMES:
            keys += [feature_key(level), position_key(level), segment_key(level)]
        picked = {k: features[k] for k in keys if features.get(k) is not None}
        if not any(k.startswith(FEATURE_KEY.format("")) for k in picked):
            raise ValueError("captioning needs image features: features hold no `img_feature_convert_*` field")
        return picked

    def step_logits_fn(self, features):
        """-> logits_fn(input_ids [N, W], input_mask [N, W], position) -> logits [N, V] at `position`, over
        the patches of `features` (N = their batch size)."""
        patches = self.patch_features(features)

        def logits_fn(input_ids, input_mask, position):
            batch = tf.shape(input_ids)[0]
            inputs = dict(
                patches,
                input_ids=input_ids,
                input_mask=input_mask,
                segment_ids=tf.zeros_like(input_ids),
                masked_lm_positions=tf.fill([batch, 1], tf.cast(position, tf.int32)),
            )
            return self(inputs, training=False)["mlm_logits"]  # [N, V]

        return logits_fn

    def resolve_max_length(self, max_length=None):
        """The caption length to generate: `max_length`, or the model's `max_caption_length` when None;
        checked against the position table."""
        length = self.max_caption_length if max_length is None else int(max_length)
        if not 1 <= length < self.config.max_position_embeddings:
            raise ValueError(f"max_length must be in [1, {self.config.max_position_embeddings - 1}], got {length}")
        return length

    def generate(self, features, max_length=None, beam_size=None, length_penalty=None, no_repeat_ngram_size=None):
        """Captions the images of `features`: token ids [B, L] int32 (L = max_length).

        A caption is the tokens after [CLS] up to and including [SEP] (when generated), [PAD] after it.
        beam_size 1 decodes greedily; more runs beam search. Defaults come from the constructor.
        Works eagerly and inside tf.function (fixed shapes, tf.while_loop).
        """
        length = self.resolve_max_length(max_length)
        beams = self.beam_size if beam_size is None else int(beam_size)
        if beams < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}")
        penalty = self.length_penalty if length_penalty is None else float(length_penalty)
        ngram = self.no_repeat_ngram_size if no_repeat_ngram_size is None else int(no_repeat_ngram_size)
        patches = self.patch_features(features)
        batch_size = tf.shape(next(iter(patches.values())))[0]
        if beams == 1:
            return caption_decoding.greedy_decode(
                self.step_logits_fn(patches), batch_size, length, self.tokens, no_repeat_ngram_size=ngram
            )
        tiled = {k: tf.repeat(v, beams, axis=0) for k, v in patches.items()}  # [B*K, ...], example-major
        return caption_decoding.beam_search_decode(
            self.step_logits_fn(tiled),
            batch_size,
            length,
            beams,
            self.tokens,
            length_penalty=penalty,
            no_repeat_ngram_size=ngram,
        )

    # ------------------------------------------------------------------ config
    def get_config(self):
        config = super().get_config()
        config.update(
            config=self.config.to_dict(),
            **caption_args(self),
            mask_seed=self.mask_seed,
            use_image_mask=self.use_image_mask,
            fused_qkv=self.fused_qkv,
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**dict(config))
