"""SavedModel export for TF Serving: `export_saved_model(model, export_dir)` and the `kaleido-export` CLI.

See docs/serving.md for the signatures, the serving command and request examples. TensorFlow is imported when
one of the names below is first used, so `kaleido-export --help` stays fast.
"""

import importlib

_LAZY = {
    "ExportError": "kaleido_tf.export.exporter",
    "export_saved_model": "kaleido_tf.export.exporter",
    "KaleidoServingModule": "kaleido_tf.export.serving_module",
    "WordPieceEncoder": "kaleido_tf.export.text_encoder",
}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kaleido_tf.export' has no attribute {name!r}")


__all__ = list(_LAZY)
