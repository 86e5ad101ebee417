"""SavedModel export for TF Serving: `export_saved_model(model, export_dir)` and the `kaleido-export` CLI.

See docs/serving.md for the signatures, the serving command and request examples. TensorFlow is imported when
one of the names below is first used, so `kaleido-export --help` stays fast.
"""

from kaleido_tf.utils.lazy_names import lazy_getattr

_LAZY = {
    "ExportError": "kaleido_tf.export.exporter",
    "export_saved_model": "kaleido_tf.export.exporter",
    "KaleidoServingModule": "kaleido_tf.export.serving_module",
    "WordPieceEncoder": "kaleido_tf.export.text_encoder",
}


__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = list(_LAZY)
