"""The Kaleido-BERT backbone: text and five kaleido patch levels in one single-stream BERT encoder.

Shape legend: B batch, T text length, n patches of a level, N = 55 patches in all, S = T + N, F patch feature
size, H hidden size.
"""

import keras
from keras import ops

from kaleido_tf.layers.core import dense, get_initializer
from kaleido_tf.layers.embedding import PatchEmbedding, TextEmbedding
from kaleido_tf.layers.encoder import Encoder
from kaleido_tf.layers.mask import attention_bias_from_key_mask, attention_bias_from_mask
from kaleido_tf.utils.kaleido_levels import (  # noqa: F401 (LEVELS: imported here for the backbone's users)
    LEVEL_NAMES,
    LEVEL_SIZES,
    LEVELS,
    POSITION_SIZE,
    feature_key,
    position_key,
    segment_key,
)

# The text prefix of an image-only pass: [CLS] [SEP] of the released (BERT uncased) vocabulary.
IMAGE_PREFIX_IDS = (101, 102)

# Backbone arguments that are KaleidoBERTConfig fields (and `config.json` keys) of the same name.
CONFIG_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "initializer_range",
    "patch_feature_size",
    "patch_type_vocab_size",
    "text_seq_len",
)


@keras.saving.register_keras_serializable(package="kaleido_tf")
class KaleidoBERTBackbone(keras.layers.Layer):
    """Embeds text and the 55 kaleido patches, runs the encoder and pools position 0.

    Takes the feature dict of the original input schema (`input_ids`, `input_mask`, `segment_ids`,
    `img_feature_convert_<level>` flat [B, n*F] or [B, n, F], `img_loc_position_<level>` flat [B, n*5] or
    [B, n, 5], optionally `image_mask` [B, N] and `img_feature_<level>_segment` [B, n]) and returns
    (sequence_output [B, S, H], pooled_output [B, H]).

    Args (named as the `config.json` keys, see docs/config.md):
        vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size,
        max_position_embeddings, type_vocab_size: BERT sizes.
        hidden_dropout_prob: dropout of the embeddings and of each block's outputs.
        attention_probs_dropout_prob: dropout of the attention probabilities.
        initializer_range: stddev of the truncated-normal initialiser.
        patch_feature_size: F.
        patch_type_vocab_size: rows of each level's type table.
        level_lengths: patches per level, in level order (1, 4, 9, 16, 25 for the released model); the config's
            `img_<level>_seq_len` keys.
        text_seq_len: text length used when no text is given.
        use_image_mask: attend only to patches whose `image_mask` is 1. The original ignores `image_mask`
            (ORIGINAL.md quirk 2), so the default is False.
        fused_qkv: one [H, 3H] matmul for Q, K and V.
    """

    def __init__(
        self,
        vocab_size=30522,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=512,
        type_vocab_size=2,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        initializer_range=0.02,
        patch_feature_size=2048,
        patch_type_vocab_size=2,
        level_lengths=LEVEL_SIZES,
        text_seq_len=64,
        use_image_mask=False,
        fused_qkv=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.initializer_range = initializer_range
        self.patch_feature_size = patch_feature_size
        self.patch_type_vocab_size = patch_type_vocab_size
        self.level_lengths = tuple(int(n) for n in level_lengths)
        if len(self.level_lengths) != len(LEVEL_NAMES):
            raise ValueError(f"level_lengths needs {len(LEVEL_NAMES)} entries, got {self.level_lengths}")
        self.text_seq_len = text_seq_len
        self.use_image_mask = use_image_mask
        self.fused_qkv = fused_qkv

    @property
    def num_patches(self):
        return sum(self.level_lengths)

    def build(self, input_shape=None):
        policy = self.dtype_policy
        self.embeddings = TextEmbedding(
            self.vocab_size,
            self.hidden_size,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=self.type_vocab_size,
            hidden_dropout_prob=self.hidden_dropout_prob,
            initializer_range=self.initializer_range,
            name="embeddings",
            dtype=policy,
        )
        self.embeddings.build()
        # One [5, H] projection of the patch positions, shared by all levels.
        self.position_dense = self.add_weight(
            name="position_dense",
            shape=(POSITION_SIZE, self.hidden_size),
            initializer=get_initializer(self.initializer_range),
        )
        self.patch_embeddings = []
        for segment, (level, n) in enumerate(zip(LEVEL_NAMES, self.level_lengths), start=1):
            layer = PatchEmbedding(
                n,
                self.patch_feature_size,
                self.hidden_size,
                patch_type_vocab_size=self.patch_type_vocab_size,
                default_segment_id=segment,
                hidden_dropout_prob=self.hidden_dropout_prob,
                initializer_range=self.initializer_range,
                name=f"{level}_embeddings",
                dtype=policy,
            )
            layer.build()
            # Also a named attribute: TensorFlow checkpoints track attributes, not Keras lists.
            setattr(self, f"{level}_embeddings", layer)
            self.patch_embeddings.append(layer)
        self.encoder = Encoder(
            self.num_hidden_layers,
            self.hidden_size,
            self.num_attention_heads,
            self.intermediate_size,
            hidden_dropout_prob=self.hidden_dropout_prob,
            attention_probs_dropout_prob=self.attention_probs_dropout_prob,
            initializer_range=self.initializer_range,
            fused_qkv=self.fused_qkv,
            name="encoder",
            dtype=policy,
        )
        self.encoder.build()
        self.pooler = dense(self.hidden_size, "pooler", self.initializer_range, activation="tanh", dtype=policy)
        self.pooler.build((None, self.hidden_size))
        self.built = True

    # ------------------------------------------------------------------ inputs
    def batch_size_of(self, features):
        """The batch size B of `features`: from `input_ids`, else from the first level's patch features."""
        for key in ("input_ids", feature_key(LEVEL_NAMES[0])):
            if features.get(key) is not None:
                return ops.shape(features[key])[0]
        for level in LEVEL_NAMES:
            if features.get(feature_key(level)) is not None:
                return ops.shape(features[feature_key(level)])[0]
        raise ValueError("features hold neither `input_ids` nor any `img_feature_convert_*` field")

    def _text_inputs(self, features, batch_size):
        input_ids = features.get("input_ids")
        if input_ids is None:
            # Image only: zero text of the configured length, masked out.
            shape = (batch_size, self.text_seq_len)
            return ops.zeros(shape, "int32"), ops.zeros(shape, "int32"), ops.zeros(shape, "int32")
        input_ids = ops.cast(input_ids, "int32")
        input_mask = features.get("input_mask")
        input_mask = ops.ones_like(input_ids) if input_mask is None else ops.cast(input_mask, "int32")
        segment_ids = features.get("segment_ids")
        segment_ids = ops.zeros_like(input_ids) if segment_ids is None else ops.cast(segment_ids, "int32")
        return input_ids, input_mask, segment_ids

    def _level_inputs(self, features, level, n, batch_size):
        """-> patch features [B, n, F], positions [B, n, 5], key mask [B, n], segment ids [B, n] or None."""
        patches = features.get(feature_key(level))
        positions = features.get(position_key(level))
        if patches is None:
            patches = ops.zeros((batch_size, n, self.patch_feature_size), self.compute_dtype)
            mask = ops.zeros((batch_size, n), "int32")
            if positions is None:
                positions = ops.zeros((batch_size, n, POSITION_SIZE), self.compute_dtype)
        else:
            patches = ops.reshape(ops.cast(patches, self.compute_dtype), (batch_size, n, self.patch_feature_size))
            mask = ops.ones((batch_size, n), "int32")
            if positions is None:
                positions = ops.ones((batch_size, n, POSITION_SIZE), self.compute_dtype)
        positions = ops.reshape(ops.cast(positions, self.compute_dtype), (batch_size, n, POSITION_SIZE))
        return patches, positions, mask, features.get(segment_key(level))

    # ------------------------------------------------------------------ embeddings
    def embed_text(self, features, training=False):
        """The text part of the sequence: embeddings [B, T, H] and key mask [B, T] (int32).

        Without `input_ids` (image only) the text is `text_seq_len` masked-out zeros.
        """
        batch_size = self.batch_size_of(features)
        input_ids, input_mask, segment_ids = self._text_inputs(features, batch_size)
        return self.embeddings(input_ids, segment_ids, training=training), input_mask

    def embed_patches(self, features, training=False):
        """The patch part of the sequence, the five levels in order: embeddings [B, N, H], key mask [B, N].

        A level whose features are missing gets masked-out zeros; with `use_image_mask`, `image_mask` [B, N]
        masks patches too.
        """
        batch_size = self.batch_size_of(features)
        pieces, key_masks = [], []
        position_dense = ops.cast(self.position_dense, self.compute_dtype)
        for layer, level, n in zip(self.patch_embeddings, LEVEL_NAMES, self.level_lengths):
            patches, positions, mask, segments = self._level_inputs(features, level, n, batch_size)
            position_embeddings = ops.einsum("bnc,ch->bnh", positions, position_dense)  # [B, n, H]
            pieces.append(layer(patches, position_embeddings, segment_ids=segments, training=training))
            key_masks.append(mask)
        key_mask = ops.concatenate(key_masks, axis=1)  # [B, N]
        if self.use_image_mask and features.get("image_mask") is not None:
            image_mask = ops.reshape(ops.cast(features["image_mask"], "int32"), (batch_size, self.num_patches))
            key_mask = key_mask * image_mask  # [B, N]
        return ops.concatenate(pieces, axis=1), key_mask

    # ------------------------------------------------------------------ call
    def call(self, features, training=False, attention_mask=None):
        """features -> (sequence_output [B, S, H], pooled_output [B, H]).

        attention_mask: optional full mask [B, S, S] (1 = the query row may attend to the key column), e.g.
            `layers.seq2seq_attention_mask` for captioning; it is combined with the key mask. None keeps the
            key mask alone (every position attends to every unmasked key), as the original does.
        """
        text, text_mask = self.embed_text(features, training=training)  # [B, T, H], [B, T]
        patches, patch_mask = self.embed_patches(features, training=training)  # [B, N, H], [B, N]
        embedded = ops.concatenate([text, patches], axis=1)  # [B, S, H]
        key_mask = ops.concatenate([text_mask, patch_mask], axis=1)  # [B, S]
        if attention_mask is None:
            attention_bias = attention_bias_from_key_mask(key_mask, self.compute_dtype)  # [B, 1, 1, S]
        else:
            full_mask = ops.cast(attention_mask, "int32") * ops.expand_dims(key_mask, 1)  # [B, S, S]
            attention_bias = attention_bias_from_mask(full_mask, self.compute_dtype)  # [B, 1, S, S]

        sequence_output = self.encoder(embedded, attention_bias=attention_bias, training=training)  # [B, S, H]
        pooled_output = self.pooler(sequence_output[:, 0])  # [B, H]
        return sequence_output, pooled_output

    # ------------------------------------------------------------------ pooled output alone
    def pool_embedded(self, embedded, key_mask, training=False):
        """pooled_output [B, H] of an embedded sequence [B, S, H] with key mask [B, S] (as `call` computes it
        without `attention_mask`), the last block computing position 0 only: 1/S of its queries, feed-forward
        and output projection. For image-text matching, which reads nothing else."""
        attention_bias = attention_bias_from_key_mask(key_mask, self.compute_dtype)  # [B, 1, 1, S]
        first = self.encoder(embedded, attention_bias=attention_bias, training=training, num_outputs=1)  # [B, 1, H]
        return self.pooler(first[:, 0])  # [B, H]

    def pooled_output(self, features, training=False):
        """`call(features)[1]` computed without the unused rows of the last block."""
        text, text_mask = self.embed_text(features, training=training)  # [B, T, H], [B, T]
        patches, patch_mask = self.embed_patches(features, training=training)  # [B, N, H], [B, N]
        embedded = ops.concatenate([text, patches], axis=1)  # [B, S, H]
        return self.pool_embedded(embedded, ops.concatenate([text_mask, patch_mask], axis=1), training=training)

    # ------------------------------------------------------------------ one modality alone
    def encode_text(self, features, training=False):
        """The text alone through the encoder: (sequence_output [B, T, H], pooled_output [B, H]).

        Only the T text positions are computed (a sequence of length T, not a full one with the patches
        masked out); features need `input_ids` (`input_mask`, `segment_ids` optional, as in `call`).
        """
        if features.get("input_ids") is None:
            raise ValueError("encode_text needs `input_ids` in the features")
        text, text_mask = self.embed_text(features, training=training)  # [B, T, H], [B, T]
        attention_bias = attention_bias_from_key_mask(text_mask, self.compute_dtype)  # [B, 1, 1, T]
        sequence_output = self.encoder(text, attention_bias=attention_bias, training=training)  # [B, T, H]
        return sequence_output, self.pooler(sequence_output[:, 0])

    def encode_image(self, features, training=False, prefix_ids=IMAGE_PREFIX_IDS):
        """The 55 patches alone behind a minimal text prefix: (sequence_output [B, P + N, H], pooled [B, H]).

        The prefix (default `[CLS] [SEP]`, P = 2 tokens of segment 0) gives the sequence its position-0 token;
        the text of `features` is ignored. Only the P + N positions are computed.
        """
        batch_size = self.batch_size_of(features)
        prefix = ops.convert_to_tensor([list(prefix_ids)], "int32")  # [1, P]
        prefix = ops.tile(prefix, (batch_size, 1))  # [B, P]
        text = self.embeddings(prefix, ops.zeros_like(prefix), training=training)  # [B, P, H]
        patches, patch_mask = self.embed_patches(features, training=training)  # [B, N, H], [B, N]
        embedded = ops.concatenate([text, patches], axis=1)  # [B, P + N, H]
        key_mask = ops.concatenate([ops.ones_like(prefix), patch_mask], axis=1)  # [B, P + N]
        attention_bias = attention_bias_from_key_mask(key_mask, self.compute_dtype)  # [B, 1, 1, P + N]
        sequence_output = self.encoder(embedded, attention_bias=attention_bias, training=training)
        return sequence_output, self.pooler(sequence_output[:, 0])

    def get_config(self):
        config = super().get_config()
        config.update(
            {name: getattr(self, name) for name in CONFIG_FIELDS},
            level_lengths=list(self.level_lengths),
            use_image_mask=self.use_image_mask,
            fused_qkv=self.fused_qkv,
        )
        return config

    @classmethod
    def from_kaleido_config(cls, config, **overrides):
        """Backbone arguments from a KaleidoBERTConfig: the fields of the same name (docs/config.md), and
        `level_lengths` from the five `img_<level>_seq_len` fields."""
        kwargs = {name: getattr(config, name) for name in CONFIG_FIELDS}
        kwargs["level_lengths"] = [n for _, _, n in config.level_lengths()]
        kwargs.update(overrides)
        return cls(**kwargs)
