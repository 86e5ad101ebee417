"""Text and patch embeddings of Kaleido-BERT.

`TextEmbedding` is BERT's: word + segment + position, LayerNorm, dropout.
`PatchEmbedding` serves all five kaleido levels (rotation, jigsaw, camouflage, grey mask, blank mask): one
instance per level, with its own projector, type table and LayerNorm; the position projection [5, H] is shared
by the levels and owned by the backbone, which passes the projected positions in.
"""

import keras
from keras import ops

from kaleido_tf.layers.core import get_initializer, layer_norm
from kaleido_tf.layers.utils import masked_one_hot_rows


@keras.saving.register_keras_serializable(package="kaleido_tf")
class TextEmbedding(keras.layers.Layer):
    """Word + segment + position embeddings of the text tokens.

    Args:
        vocab_size: rows of the word table.
        hidden_size: embedding width H.
        max_position_embeddings: rows of the position table.
        type_vocab_size: rows of the segment table (ids outside it give a zero vector, as in the original).
        hidden_dropout_prob: dropout rate after the LayerNorm.
        initializer_range: stddev of the truncated-normal initialiser.
    """

    def __init__(
        self,
        vocab_size,
        hidden_size,
        max_position_embeddings=512,
        type_vocab_size=2,
        hidden_dropout_prob=0.1,
        initializer_range=0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.initializer_range = initializer_range

    def build(self, input_shape=None):
        init = get_initializer(self.initializer_range)
        # Read in float32 even under a mixed policy (the gather happens before the cast), so that the
        # backward scatter-add into the large table accumulates in float32.
        self.word_embeddings = self.add_weight(
            name="word_embeddings", shape=(self.vocab_size, self.hidden_size), initializer=init, autocast=False
        )
        self.token_type_embeddings = self.add_weight(
            name="token_type_embeddings", shape=(self.type_vocab_size, self.hidden_size), initializer=init
        )
        self.position_embeddings = self.add_weight(
            name="position_embeddings", shape=(self.max_position_embeddings, self.hidden_size), initializer=init
        )
        self.layer_norm = layer_norm("LayerNorm", dtype=self.dtype_policy)
        self.layer_norm.build((None, None, self.hidden_size))
        self.dropout_layer = keras.layers.Dropout(self.hidden_dropout_prob, name="dropout", dtype=self.dtype_policy)
        self.built = True

    def call(self, input_ids, segment_ids, training=False):
        # input_ids, segment_ids: [B, T]
        seq_len = ops.shape(input_ids)[1]
        words = ops.take(self.word_embeddings, ops.cast(input_ids, "int32"), axis=0)  # [B, T, H]
        words = ops.cast(words, self.compute_dtype)
        types = masked_one_hot_rows(self.token_type_embeddings, segment_ids)  # [B, T, H]
        positions = self.position_embeddings[:seq_len]  # [T, H]
        x = words + types + ops.expand_dims(positions, 0)
        x = self.layer_norm(x)
        return self.dropout_layer(x, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=self.type_vocab_size,
            hidden_dropout_prob=self.hidden_dropout_prob,
            initializer_range=self.initializer_range,
        )
        return config


@keras.saving.register_keras_serializable(package="kaleido_tf")
class PatchEmbedding(keras.layers.Layer):
    """Embeds the patches of one kaleido level: projected features + level type + projected positions.

    out = dropout(LayerNorm(dropout(features) @ projector + type_table[segment] + position_embeddings))

    Args:
        num_patches: patches at this level (1, 4, 9, 16 or 25 for levels 1 to 5).
        patch_feature_size: width F of one patch feature.
        hidden_size: embedding width H.
        patch_type_vocab_size: rows of the level's type table (ids outside it give zeros: quirk 1).
        default_segment_id: segment id used when none is given (levels 1 to 5 use 1 to 5).
        hidden_dropout_prob: rate of the dropout applied to the input features and to the output.
        initializer_range: stddev of the truncated-normal initialiser.
    """

    def __init__(
        self,
        num_patches,
        patch_feature_size,
        hidden_size,
        patch_type_vocab_size=2,
        default_segment_id=1,
        hidden_dropout_prob=0.1,
        initializer_range=0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_patches = num_patches
        self.patch_feature_size = patch_feature_size
        self.hidden_size = hidden_size
        self.patch_type_vocab_size = patch_type_vocab_size
        self.default_segment_id = default_segment_id
        self.hidden_dropout_prob = hidden_dropout_prob
        self.initializer_range = initializer_range

    def build(self, input_shape=None):
        init = get_initializer(self.initializer_range)
        self.projector = self.add_weight(
            name="projector", shape=(self.patch_feature_size, self.hidden_size), initializer=init
        )
        self.type_embeddings = self.add_weight(
            name="type_embeddings", shape=(self.patch_type_vocab_size, self.hidden_size), initializer=init
        )
        self.layer_norm = layer_norm("LayerNorm", dtype=self.dtype_policy)
        self.layer_norm.build((None, None, self.hidden_size))
        self.input_dropout = keras.layers.Dropout(
            self.hidden_dropout_prob, name="input_dropout", dtype=self.dtype_policy
        )
        self.output_dropout = keras.layers.Dropout(
            self.hidden_dropout_prob, name="output_dropout", dtype=self.dtype_policy
        )
        self.built = True

    def call(self, features, position_embeddings, segment_ids=None, training=False):
        # features: [B, n, F]; position_embeddings: [B, n, H]; segment_ids: [B, n] or None
        features = self.input_dropout(features, training=training)
        x = ops.einsum("bnf,fh->bnh", features, self.projector)  # [B, n, H]
        if segment_ids is None:
            segment_ids = ops.full(ops.shape(features)[:2], self.default_segment_id, dtype="int32")  # [B, n]
        # Always through the table, so an out-of-range id gives a zero gradient (and weight decay still
        # applies to the table), not a missing one.
        x = x + masked_one_hot_rows(self.type_embeddings, segment_ids)
        x = x + position_embeddings
        x = self.layer_norm(x)
        return self.output_dropout(x, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_patches=self.num_patches,
            patch_feature_size=self.patch_feature_size,
            hidden_size=self.hidden_size,
            patch_type_vocab_size=self.patch_type_vocab_size,
            default_segment_id=self.default_segment_id,
            hidden_dropout_prob=self.hidden_dropout_prob,
            initializer_range=self.initializer_range,
        )
        return config
