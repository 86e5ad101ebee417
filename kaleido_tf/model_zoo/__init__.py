"""Kaleido-BERT models, laid out as EasyTransfer's `model_zoo` package."""

from kaleido_tf.model_zoo.kaleidobert_backbone import KaleidoBERTBackbone
from kaleido_tf.model_zoo.kaleidobert_captioner import KaleidoBERTCaptioner
from kaleido_tf.model_zoo.kaleidobert_classifier import KaleidoBERTClassifier
from kaleido_tf.model_zoo.kaleidobert_config import KaleidoBERTConfig
from kaleido_tf.model_zoo.kaleidobert_pretrain_model import KaleidoBERTPretrainModel
from kaleido_tf.model_zoo.kaleidobert_retrieval_model import KaleidoBERTRetrievalModel
from kaleido_tf.model_zoo.registry import MODEL_ZOO, build_model, from_pretrained
from kaleido_tf.utils.kaleido_levels import LEVELS

__all__ = [
    "LEVELS",
    "MODEL_ZOO",
    "KaleidoBERTBackbone",
    "KaleidoBERTCaptioner",
    "KaleidoBERTClassifier",
    "KaleidoBERTConfig",
    "KaleidoBERTPretrainModel",
    "KaleidoBERTRetrievalModel",
    "build_model",
    "from_pretrained",
]
