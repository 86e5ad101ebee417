"""Keras 3 layers of Kaleido-BERT, laid out as EasyTransfer's `layers` package."""

from kaleido_tf.layers.activations import gelu_tanh, get_activation
from kaleido_tf.layers.attention import SelfAttention
from kaleido_tf.layers.core import LAYER_NORM_EPSILON, dense, get_initializer, layer_norm
from kaleido_tf.layers.embedding import PatchEmbedding, TextEmbedding
from kaleido_tf.layers.encoder import Encoder, TransformerLayer
from kaleido_tf.layers.heads import MLMHead, PatchClassificationHead, PatchReconstructionHead
from kaleido_tf.layers.mask import (
    MASK_ADDER,
    attention_bias_from_key_mask,
    attention_bias_from_mask,
    seq2seq_attention_mask,
)
from kaleido_tf.layers.utils import gather_indexes, masked_one_hot_rows

__all__ = [
    "Encoder",
    "LAYER_NORM_EPSILON",
    "MASK_ADDER",
    "MLMHead",
    "PatchClassificationHead",
    "PatchEmbedding",
    "PatchReconstructionHead",
    "SelfAttention",
    "TextEmbedding",
    "TransformerLayer",
    "attention_bias_from_key_mask",
    "attention_bias_from_mask",
    "dense",
    "gather_indexes",
    "gelu_tanh",
    "get_activation",
    "get_initializer",
    "layer_norm",
    "masked_one_hot_rows",
    "seq2seq_attention_mask",
]
