"""kaleido_tf: Kaleido-BERT on TensorFlow 2 / Keras 3.

    import kaleido_tf
    model = kaleido_tf.from_pretrained(path)     # TF1 checkpoint, converted directory or model-zoo name
    out = model(features, training=False)
    losses = kaleido_tf.losses.pretrain_losses(out, features, model.config)

Importing the package is cheap: TensorFlow is loaded when a model, loss or layer is first used.
"""

import importlib
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from kaleido_tf.version import __version__

_LAZY = {
    "KaleidoBERTBackbone": ("kaleido_tf.model_zoo", "KaleidoBERTBackbone"),
    "KaleidoBERTCaptioner": ("kaleido_tf.model_zoo", "KaleidoBERTCaptioner"),
    "KaleidoBERTClassifier": ("kaleido_tf.model_zoo", "KaleidoBERTClassifier"),
    "KaleidoBERTConfig": ("kaleido_tf.model_zoo.kaleidobert_config", "KaleidoBERTConfig"),
    "KaleidoBERTPretrainModel": ("kaleido_tf.model_zoo", "KaleidoBERTPretrainModel"),
    "from_pretrained": ("kaleido_tf.model_zoo.registry", "from_pretrained"),
}
_SUBMODULES = (
    "convert",
    "datasets",
    "demo",
    "engines",
    "evaluators",
    "export",
    "layers",
    "losses",
    "model_zoo",
    "optimizers",
    "preprocessors",
    "tasks",
    "utils",
)


def __getattr__(name):
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"kaleido_tf.{name}")
    raise AttributeError(f"module 'kaleido_tf' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY, *_SUBMODULES]
